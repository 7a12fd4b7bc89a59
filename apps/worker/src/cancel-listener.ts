import { cancelCallsChannel } from '@moa-queue/contract';
import type { Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';

/**
 * Listens for call jobs to abort (a cancelled request, a passed layer
 * deadline) and aborts those this process is running, through the AbortSignal
 * BullMQ hands each processor. Other processes ignore ids they do not hold.
 */
export async function listenForCancels(
  connection: Redis,
  prefix: string,
  workers: Worker[],
  logger: Logger,
  onError: (error: Error) => void = (error) =>
    logger.warn({ error: error.message }, 'cancel subscriber error'),
): Promise<() => Promise<void>> {
  const subscriber = connection.duplicate();
  subscriber.on('error', onError);
  const channel = cancelCallsChannel(prefix);
  subscriber.on('message', (received, message) => {
    if (received !== channel) return;
    let ids: unknown;
    try {
      ids = JSON.parse(message);
    } catch {
      return;
    }
    if (!Array.isArray(ids)) return;
    for (const id of ids) {
      if (typeof id !== 'string') continue;
      for (const worker of workers) {
        if (worker.cancelJob(id, 'the request was cancelled or its layer deadline passed')) {
          logger.info({ jobId: id }, 'aborted a running call');
        }
      }
    }
  });
  await subscriber.subscribe(channel);
  return async () => {
    await subscriber.quit().catch(() => subscriber.disconnect());
  };
}
