import { pino, type Logger } from 'pino';

/** Paths whose values never reach a log line. */
export const REDACTED_PATHS = [
  'apiKey',
  '*.apiKey',
  'authorization',
  '*.authorization',
  'headers.authorization',
  '*.headers.authorization',
  'secret',
  '*.secret',
];

/** The worker's structured JSON logger. */
export function createLogger(level: string): Logger {
  return pino({
    level,
    base: { service: 'moa-worker' },
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
  });
}
