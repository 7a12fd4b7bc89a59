import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { requestJobKey, type RequestProgress } from '@moa-queue/contract';
import { ErrorCode } from 'bullmq';
import type { Redis } from 'ioredis';

const SCRIPT = readFileSync(fileURLToPath(new URL('../lua/request-progress.lua', import.meta.url)), 'utf8');
const COMMAND = 'moaWriteRequestProgress';

type WithCommand = Redis & {
  [COMMAND](jobKey: string, processedKey: string, progress: string, ended: '0' | '1'): Promise<number>;
};

/** Options of a progress write. */
export interface ProgressWriteOptions {
  /**
   * The request has ended: its completed calls' results, which BullMQ
   * copied into the job's `:processed` hash, are dropped with the write (the
   * layers of the progress hold them).
   * @defaultValue false
   */
  ended?: boolean;
}

/**
 * Writes the progress of a request's orchestrator job with
 * `lua/request-progress.lua` (loaded once per connection by
 * `defineCommand`): one atomic script, so the progress that holds a
 * request's answers is stored before the copies BullMQ kept are dropped,
 * and no event carries another copy (BullMQ's updateProgress adds one to the
 * queue's events stream on every write).
 *
 * @throws Error when the job no longer exists, with BullMQ's own code for it
 * (`ErrorCode.JobNotExist`, as its updateProgress throws): a run that lost its job.
 */
export function createProgressWriter(
  redis: Redis,
  prefix: string,
): (requestId: string, progress: RequestProgress, options?: ProgressWriteOptions) => Promise<void> {
  if (!(COMMAND in redis)) redis.defineCommand(COMMAND, { numberOfKeys: 2, lua: SCRIPT });
  const commands = redis as WithCommand;
  return async (requestId, progress, options = {}) => {
    const jobKey = requestJobKey(prefix, requestId);
    const written = await commands[COMMAND](
      jobKey,
      `${jobKey}:processed`,
      JSON.stringify(progress),
      options.ended ? '1' : '0',
    );
    if (written !== 1) {
      throw Object.assign(new Error(`Missing key for job ${requestId}. updateProgress`), {
        code: ErrorCode.JobNotExist,
      });
    }
  };
}
