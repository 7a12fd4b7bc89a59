import {
  isFinished,
  readEvents,
  readRequest,
  type MoaQueues,
  type RequestEvent,
  type RequestSnapshot,
} from '@moa-queue/contract';
import type { Redis } from 'ioredis';

/** Options of {@link followRequest}. */
export interface FollowOptions {
  onEvent?: (event: RequestEvent) => void;
  /** Stops following (the client went away); the request itself goes on. */
  signal?: AbortSignal;
  /** Give up after this long; the result is then whatever the snapshot says. */
  timeoutMs?: number;
  /**
   * How long one blocking read waits before the job's state is checked
   * directly, in case its stream expired or an event was never written.
   * @defaultValue 5000
   */
  pollMs?: number;
}

/** Re-reads the request until BullMQ shows it finished (or 10 s pass); returns the last snapshot read. */
async function waitUntilFinished(
  redis: Redis,
  queues: MoaQueues,
  requestId: string,
  signal?: AbortSignal,
): Promise<RequestSnapshot | undefined> {
  let snapshot: RequestSnapshot | undefined;
  // Usually final on the first read (the worker finishes one round trip after 'done').
  for (
    let delay = 1, waited = 0;
    waited < 10_000 && !signal?.aborted;
    waited += delay, delay = Math.min(delay * 2, 50)
  ) {
    snapshot = await readRequest(queues, redis, requestId);
    if (!snapshot || isFinished(snapshot)) return snapshot;
    await new Promise((resolve) => setTimeout(resolve, delay));
  }
  return snapshot;
}

/**
 * Follows a request through its Redis event stream until it is done, calling
 * `onEvent` for each event from the beginning, then returns its final
 * snapshot. Uses a connection of its own, because XREAD BLOCK holds it.
 */
export async function followRequest(
  redis: Redis,
  queues: MoaQueues,
  requestId: string,
  options: FollowOptions = {},
): Promise<{ snapshot: RequestSnapshot | undefined; timedOut: boolean }> {
  const reader = redis.duplicate({ maxRetriesPerRequest: 1 });
  reader.on('error', () => undefined);
  const stop = () => reader.disconnect();
  options.signal?.addEventListener('abort', stop, { once: true });
  const deadline = options.timeoutMs === undefined ? Infinity : Date.now() + options.timeoutMs;
  const pollMs = options.pollMs ?? 5000;
  let position = '0';
  let timedOut = false;
  /** A final snapshot already read while following, so it is not read again. */
  let final: RequestSnapshot | undefined;
  try {
    for (;;) {
      if (options.signal?.aborted) break;
      const remaining = deadline - Date.now();
      if (remaining <= 0) {
        timedOut = true;
        break;
      }
      const events = await readEvents(
        reader,
        queues.prefix,
        requestId,
        position,
        Math.max(1, Math.min(pollMs, remaining)),
      );
      let done: RequestEvent | undefined;
      for (const { id, event } of events) {
        position = id;
        if (event.type === 'done') done = event;
        else options.onEvent?.(event);
      }
      if (done) {
        // 'done' is written just before BullMQ records the job as finished:
        // hold it back until a reader of the job sees the final state too.
        final = await waitUntilFinished(redis, queues, requestId, options.signal);
        options.onEvent?.(done);
        break;
      }
      if (events.length === 0) {
        const snapshot = await readRequest(queues, redis, requestId);
        if (!snapshot || isFinished(snapshot)) {
          final = snapshot;
          break;
        }
      }
    }
  } catch (error) {
    if (!options.signal?.aborted) throw error;
  } finally {
    options.signal?.removeEventListener('abort', stop);
    reader.disconnect();
  }
  const snapshot = final && isFinished(final) ? final : await readRequest(queues, redis, requestId);
  return { snapshot, timedOut };
}
