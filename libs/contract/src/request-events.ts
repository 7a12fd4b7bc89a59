import type { Redis } from 'ioredis';

/** Progress of one request as it is relayed through Redis to API replicas. */
export type RequestEvent =
  | { type: 'layer_started'; layer: number; role: 'proposer' | 'aggregator'; calls: number }
  | {
      type: 'layer_finished';
      layer: number;
      role: 'proposer' | 'aggregator';
      duration_ms: number;
      succeeded: number;
      failed: number;
    }
  /** A piece of the aggregator's answer, as the provider streamed it; `attempt` tells retries apart. */
  | { type: 'delta'; attempt: number; text: string }
  | { type: 'done'; status: 'completed' | 'failed' | 'cancelled' };

/** A request's event stream key (a Redis Stream, trimmed and expiring). */
export function eventsKey(prefix: string, requestId: string): string {
  return `${prefix}:moa-events:${requestId}`;
}

/** Streams live a day after their last event while a request runs; readers after that fall back to the job's state. */
export const EVENTS_TTL_SECONDS = 24 * 3600;
/**
 * Once a request is done its stream is only for a follower reconnecting
 * (EventSource retries within seconds) or arriving late: 5 minutes. After
 * that a follower gets `done` from the job's state, and the job keeps the
 * whole story (its layers). Each stream costs at least 4 KiB of Redis (a
 * stream's first node is allocated at 4 KiB), more than a request's
 * 40-word answers: an hour of them, at a few hundred requests a second,
 * was gigabytes.
 */
export const DONE_EVENTS_TTL_SECONDS = 300;
/** Bound on a stream's length: a 2,048-token answer streamed token by token fits. */
export const EVENTS_MAX_LENGTH = 10_000;

/**
 * Appends an event to a request's stream, then notifies its followers:
 * an empty `PUBLISH` on the channel named like the stream key (API
 * replicas listen there and read the stream when told; see the API's
 * stream hub). Sent together (one round trip on an auto-pipelining
 * connection), in that order on one connection, so a follower told reads
 * the new entry. Not a transaction: a stream briefly without its TTL is
 * harmless, and the next event sets it. A lost notification only delays
 * the event until the followers' periodic read, so it never fails the
 * append. Deltas skip the EXPIRE (the layer events around them set it).
 */
export async function publishEvent(
  redis: Redis,
  prefix: string,
  requestId: string,
  event: RequestEvent,
): Promise<void> {
  const key = eventsKey(prefix, requestId);
  const payload = JSON.stringify(event);
  const appended = redis.xadd(key, 'MAXLEN', '~', EVENTS_MAX_LENGTH, '*', 'event', payload);
  const expiry =
    event.type === 'delta'
      ? undefined
      : redis.expire(key, event.type === 'done' ? DONE_EVENTS_TTL_SECONDS : EVENTS_TTL_SECONDS);
  const notified = redis.publish(key, '').catch(() => 0);
  await Promise.all([appended, expiry, notified]);
}
