import { pino, type Logger } from 'pino';

/** The API's structured JSON logger; secrets are redacted wherever they might appear. */
export function createLogger(level: string): Logger {
  return pino({
    level,
    base: { service: 'moa-api' },
    redact: {
      paths: [
        'authorization',
        '*.authorization',
        'headers.authorization',
        '*.headers.authorization',
        'apiKey',
        '*.apiKey',
        'secret',
        '*.secret',
      ],
      censor: '[redacted]',
    },
  });
}
