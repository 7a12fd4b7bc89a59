import { createLogger as createProcessLogger } from '@moa-queue/contract';
import type { Logger } from 'pino';

/** The API's logger: JSON lines, pretty on a terminal, secrets redacted. */
export function createLogger(level: string): Logger {
  return createProcessLogger('moa-api', level);
}
