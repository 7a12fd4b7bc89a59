import {
  eventsKey,
  isFinished,
  readRequest,
  type MoaQueues,
  type RequestEvent,
  type RequestSnapshot,
} from '@moa-queue/contract';
import type { Redis } from 'ioredis';
import { streamHubFor, type StreamEntry, type StreamHub, type StreamSubscription } from './stream-hub.js';

/** Options of {@link followRequest}. */
export interface FollowOptions {
  /** Each event in order, with its stream entry id (the SSE event id). */
  onEvent?: (event: RequestEvent, id: string) => void;
  /** Stops following (the client went away); the request itself goes on. */
  signal?: AbortSignal;
  /** Give up after this long; the result is then whatever the snapshot says. */
  timeoutMs?: number;
  /**
   * How long the stream may stay quiet before the job's state is checked
   * directly, in case its stream expired or an event was never written.
   * Doubles after each check that finds the request still running (up to
   * 60 s), back to this after an event.
   * @defaultValue 5000
   */
  pollMs?: number;
  /** Follow from after this stream entry id (an SSE `Last-Event-ID`). @defaultValue '0' (the start) */
  afterId?: string;
  /**
   * The request's snapshot as the caller just read it. When it has already
   * finished, its stream is complete and is read in one go instead of
   * followed.
   */
  initial?: RequestSnapshot;
  /** The shared reader; the one of `redis`'s process by default. */
  hub?: StreamHub;
}

/** What {@link followRequest} ends with. */
export interface FollowResult {
  /** The request's final snapshot (or the last one read); undefined when the client went away. */
  snapshot: RequestSnapshot | undefined;
  timedOut: boolean;
  /** The id of the last event handed to `onEvent`, or the `afterId` it started from. */
  lastId: string;
}

/** Longest wait between two checks of a quiet request's state. */
const MAX_POLL_MS = 60_000;

/** The event of a stream entry (its `event` field), or undefined if it has none. */
export function entryEvent(fields: string[]): RequestEvent | undefined {
  for (let index = 0; index + 1 < fields.length; index += 2) {
    if (fields[index] === 'event') {
      try {
        return JSON.parse(fields[index + 1]!) as RequestEvent;
      } catch {
        return undefined;
      }
    }
  }
  return undefined;
}

/** Entries of a request's stream after `afterId` ('0': all), read at once. */
async function entriesAfter(redis: Redis, key: string, afterId: string): Promise<StreamEntry[]> {
  const start = afterId === '0' || afterId === '0-0' ? '-' : `(${afterId}`;
  const entries = await redis.xrange(key, start, '+');
  return entries.map(([id, fields]) => ({ id, fields }));
}

/**
 * Whether a client resuming after `lastEventId` has already seen the end
 * of the request: that entry is `done`, or the request has finished and
 * nothing follows that id (its stream may have expired).
 */
export async function resumedAfterEnd(
  redis: Redis,
  queues: MoaQueues,
  snapshot: RequestSnapshot,
  lastEventId: string,
): Promise<boolean> {
  const key = eventsKey(queues.prefix, snapshot.data.requestId);
  const [at, after] = await Promise.all([
    redis.xrange(key, lastEventId, lastEventId),
    redis.xrange(key, `(${lastEventId}`, '+', 'COUNT', 1),
  ]);
  if (at[0] && entryEvent(at[0][1])?.type === 'done') return true;
  return isFinished(snapshot) && after.length === 0;
}

/**
 * One cheap look at whether a quiet request may have ended: its job hash
 * has `finishedOn`, or is gone. Only then is the whole request read.
 */
async function mayHaveEnded(redis: Redis, queues: MoaQueues, requestId: string): Promise<boolean> {
  const [finishedOn, timestamp] = await redis.hmget(
    queues.requests.toKey(requestId),
    'finishedOn',
    'timestamp',
  );
  return finishedOn !== null || timestamp === null;
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
 * Follows a request through its Redis event stream until it is done,
 * calling `onEvent` for each event after `afterId` (from the beginning by
 * default), then returns its final snapshot. Reading is done by the
 * process's shared {@link StreamHub}: following holds no connection of its
 * own, whatever the number of followers.
 */
export async function followRequest(
  redis: Redis,
  queues: MoaQueues,
  requestId: string,
  options: FollowOptions = {},
): Promise<FollowResult> {
  const key = eventsKey(queues.prefix, requestId);
  let lastId = options.afterId ?? '0';
  const { signal } = options;
  if (signal?.aborted) return { snapshot: undefined, timedOut: false, lastId };

  // A request that has already ended: its stream is complete, read it in one go.
  if (options.initial && isFinished(options.initial)) {
    for (const { id, fields } of await entriesAfter(redis, key, lastId)) {
      const event = entryEvent(fields);
      if (!event) continue;
      lastId = id;
      options.onEvent?.(event, id);
      if (event.type === 'done') break;
    }
    return { snapshot: options.initial, timedOut: false, lastId };
  }

  const hub = options.hub ?? streamHubFor(redis);
  const basePollMs = options.pollMs ?? 5000;
  return new Promise<FollowResult>((resolve, reject) => {
    /** following → ending (a final read in progress) → ended. */
    let state: 'following' | 'ending' | 'ended' = 'following';
    let pollMs = basePollMs;
    let idleTimer: NodeJS.Timeout | undefined;
    let deadlineTimer: NodeJS.Timeout | undefined;
    let subscription: StreamSubscription | undefined;

    function stopFollowing(): void {
      subscription?.close();
      clearTimeout(idleTimer);
      clearTimeout(deadlineTimer);
    }
    function settle(snapshot: RequestSnapshot | undefined, timedOut: boolean): void {
      if (state === 'ended') return;
      state = 'ended';
      stopFollowing();
      signal?.removeEventListener('abort', onAbort);
      resolve({ snapshot, timedOut, lastId });
    }
    function fail(error: unknown): void {
      if (state === 'ended') return;
      state = 'ended';
      stopFollowing();
      signal?.removeEventListener('abort', onAbort);
      reject(error instanceof Error ? error : new Error(String(error)));
    }
    /** Stops following and settles with what `final` reads. */
    function end(final: () => Promise<RequestSnapshot | undefined>, timedOut: boolean): void {
      if (state !== 'following') return;
      state = 'ending';
      stopFollowing();
      final().then(
        (snapshot) => settle(snapshot, timedOut),
        (error: unknown) => (signal?.aborted ? settle(undefined, false) : fail(error)),
      );
    }
    function onAbort(): void {
      settle(undefined, false);
    }

    function armIdleCheck(): void {
      clearTimeout(idleTimer);
      // Jittered, so that followers which arrived together do not all check at once.
      idleTimer = setTimeout(
        () => {
          mayHaveEnded(redis, queues, requestId)
            .then((ended) => (ended ? readRequest(queues, redis, requestId) : null))
            .then(
              (snapshot) => {
                if (state !== 'following') return;
                if (snapshot !== null && (!snapshot || isFinished(snapshot))) {
                  end(async () => snapshot, false);
                  return;
                }
                pollMs = Math.min(pollMs * 2, MAX_POLL_MS);
                armIdleCheck();
              },
              // Redis trouble: keep following; the reader resumes from the last id when it is back.
              () => state === 'following' && armIdleCheck(),
            );
        },
        pollMs * (0.75 + Math.random() / 2),
      );
    }

    function onEntries(entries: StreamEntry[]): void {
      if (state !== 'following') return;
      for (const { id, fields } of entries) {
        const event = entryEvent(fields);
        if (!event) continue;
        if (event.type === 'done') {
          // 'done' is written just before BullMQ records the job as finished:
          // hold it back until a reader of the job sees the final state too.
          end(async () => {
            const final = await waitUntilFinished(redis, queues, requestId, signal);
            if (signal?.aborted) return undefined;
            lastId = id;
            options.onEvent?.(event, id);
            return final && isFinished(final) ? final : readRequest(queues, redis, requestId);
          }, false);
          return;
        }
        lastId = id;
        options.onEvent?.(event, id);
      }
      pollMs = basePollMs;
      armIdleCheck();
    }

    signal?.addEventListener('abort', onAbort, { once: true });
    if (options.timeoutMs !== undefined) {
      deadlineTimer = setTimeout(
        () => end(() => readRequest(queues, redis, requestId), true),
        Math.max(0, options.timeoutMs),
      );
    }
    try {
      subscription = hub.subscribe(key, lastId, {
        onEntries,
        onError: (error) => fail(error),
      });
    } catch (error) {
      fail(error);
      return;
    }
    armIdleCheck();
  });
}
