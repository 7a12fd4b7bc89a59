import { isInfrastructureError, REDIS_REFUSAL_CODES } from '@moa-queue/contract';
import { ApiError } from './api-error.js';

/**
 * What a Redis failure means for a client: Redis cannot be reached or does
 * not answer in time (`unavailable`), or it refuses writes because it is at
 * `maxmemory` (`full`). Either way the request may succeed later.
 */
export type RedisFault = 'unavailable' | 'full';

/** `Retry-After` (seconds) of a 503 per fault: a reconnect takes a second or two, freeing memory longer. */
export const REDIS_RETRY_AFTER_SECONDS: Record<RedisFault, number> = { unavailable: 2, full: 5 };

/** `OOM command not allowed when used memory > 'maxmemory'.` — also inside a script's error text. */
const FULL = /(?:^|[\s:-])OOM command not allowed\b/;

/**
 * Error replies of a Redis that cannot serve now, in any error's message (not
 * only ioredis's `ReplyError`, which `isInfrastructureError` takes): the
 * shared list of codes but `OOM` (a fault of its own, `full`), e.g. a replica
 * after a failover (`READONLY`, `UNBLOCKED`), a restart reading its data
 * (`LOADING`), a long script (`BUSY`). At the start of the reply, or after
 * `-` where a Lua script's error quotes the reply of a command it called.
 */
const UNAVAILABLE_REPLY = new RegExp(
  `(?:^|[\\s:]-?|-)(?:${[...REDIS_REFUSAL_CODES].filter((code) => code !== 'OOM').join('|')})\\b`,
);

/** ioredis and BullMQ client-side messages for a connection that is gone or does not answer. */
const UNAVAILABLE_MESSAGES = [
  'Connection is closed.', // ioredis (and BullMQ's ConnectionClosedError)
  "Stream isn't writeable", // ioredis with enableOfflineQueue: false while disconnected
  'Command timed out', // ioredis commandTimeout
  'Reached the max retries per request limit', // ioredis MaxRetriesPerRequestError
  'Command aborted due to connection close', // ioredis AbortError of a command in flight
  'max number of clients reached',
  'Redis is unavailable',
];

/** Socket error codes of a Redis connection (the API makes no other outbound connection on a request). */
const UNAVAILABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'ENOTFOUND',
]);

/** ioredis' own error classes for a connection problem (redis-errors' AbortError and its subclasses). */
const UNAVAILABLE_NAMES = new Set(['MaxRetriesPerRequestError', 'AbortError', 'ConnectionClosedError']);

function faultOfOne(error: Record<string, unknown>): RedisFault | undefined {
  const message = typeof error.message === 'string' ? error.message : '';
  if (FULL.test(message)) return 'full';
  // The rule the workers use for "Redis cannot serve now"; the API's own additions follow.
  if (isInfrastructureError(error)) return 'unavailable';
  if (typeof error.name === 'string' && UNAVAILABLE_NAMES.has(error.name)) return 'unavailable';
  if (typeof error.code === 'string' && UNAVAILABLE_CODES.has(error.code)) return 'unavailable';
  if (UNAVAILABLE_MESSAGES.some((known) => message.includes(known))) return 'unavailable';
  if (UNAVAILABLE_REPLY.test(message)) return 'unavailable';
  return undefined;
}

/**
 * Classifies an error thrown while talking to Redis (ioredis, or BullMQ
 * passing it on): `full`, `unavailable`, or `undefined` for anything else
 * (a bug, a bad argument, a script's own error). Everything the shared
 * `isInfrastructureError` (the workers' rule) counts is a fault here too;
 * the API also looks through `cause` chains, an `EXECABORT`'s
 * `previousErrors` and an `AggregateError`'s `errors` (on a request path
 * every such error comes from Redis: the API calls no provider), and `full`
 * wins when both appear.
 */
export function redisFaultOf(error: unknown): RedisFault | undefined {
  const seen = new Set<unknown>();
  const pending: unknown[] = [error];
  let found: RedisFault | undefined;
  while (pending.length > 0 && seen.size < 32) {
    const next = pending.shift();
    if (typeof next !== 'object' || next === null || seen.has(next)) continue;
    seen.add(next);
    const candidate = next as Record<string, unknown>;
    const fault = faultOfOne(candidate);
    if (fault === 'full') return 'full';
    found ??= fault;
    if ('cause' in candidate) pending.push(candidate.cause);
    for (const list of [candidate.previousErrors, candidate.errors]) {
      if (Array.isArray(list)) pending.push(...list);
    }
  }
  return found;
}

/** The 503 a client gets for a Redis fault: an OpenAI error object with `Retry-After`. */
export function redisFaultError(fault: RedisFault): ApiError {
  const retryAfter = REDIS_RETRY_AFTER_SECONDS[fault];
  const message =
    fault === 'full'
      ? `The service's storage is full and cannot accept this request now; retry after ${retryAfter} seconds`
      : `The service's storage is unavailable; retry after ${retryAfter} seconds`;
  return new ApiError(
    503,
    message,
    'server_error',
    null,
    fault === 'full' ? 'redis_full' : 'redis_unavailable',
    {
      'retry-after': String(retryAfter),
      'x-should-retry': 'true',
    },
  );
}

/** The 503 for an error that is a Redis fault, or `undefined` when it is not one. */
export function redisApiErrorOf(error: unknown): ApiError | undefined {
  const fault = redisFaultOf(error);
  return fault ? redisFaultError(fault) : undefined;
}
