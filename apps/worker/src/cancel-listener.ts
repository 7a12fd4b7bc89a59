import { cancelCallsChannel, parseCallCancels } from '@moa-queue/contract';
import type { Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';

/**
 * Listens for call jobs to abort (a cancelled request, a passed layer
 * deadline) and aborts those this process is running, through the AbortSignal
 * BullMQ hands each processor, its reason the cause's code. Other processes
 * ignore ids they do not hold.
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
    const cancels = parseCallCancels(message);
    if (!cancels) return;
    for (const id of cancels.ids) {
      for (const worker of workers) {
        // The cause code becomes the call's abort reason: the call records it (cancellation.ts).
        if (worker.cancelJob(id, cancels.cause)) {
          logger.info({ jobId: id, cause: cancels.cause }, 'aborted a running call');
        }
      }
    }
  });
  await subscriber.subscribe(channel);
  return async () => {
    await subscriber.quit().catch(() => subscriber.disconnect());
  };
}
