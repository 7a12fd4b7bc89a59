import { Redis, type RedisOptions } from 'ioredis';

/** Options of {@link createApiRedis}. */
export interface ApiRedisOptions {
  /** Longest wait for any one command's reply (`MOA_REDIS_COMMAND_TIMEOUT_MS`). @defaultValue 2000 */
  commandTimeoutMs?: number;
}

/**
 * The ioredis options of the API's connection: a request never waits on
 * Redis for long, whatever Redis is doing.
 *
 * - `commandTimeout`: a command without a reply within this long (Redis
 *   paused, a network that drops packets, a slow script) fails with
 *   "Command timed out", which the error handler answers with 503.
 * - `enableOfflineQueue: false`: while the connection is down a command fails
 *   at once instead of waiting in a queue, and nothing a client already got a
 *   503 for is sent to Redis later, when the connection is back.
 * - `maxRetriesPerRequest: 0`, `autoResendUnfulfilledCommands: false`: a
 *   command in flight when the connection drops fails at once and is not
 *   sent again after the reconnect (its request was already answered).
 * - Reconnects go on for ever, 100 ms apart growing to 2 s.
 *
 * A connection made for blocking reads (`XREAD BLOCK`) must not inherit
 * `commandTimeout` (it would cut every block longer than it) nor the disabled
 * offline queue (its first command is sent before it connects): duplicate it
 * with {@link BLOCKING_CONNECTION_OVERRIDES}.
 */
export function apiRedisOptions(options: ApiRedisOptions = {}): RedisOptions {
  const commandTimeout = options.commandTimeoutMs ?? 2000;
  return {
    commandTimeout,
    connectTimeout: Math.max(commandTimeout, 5000),
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    retryStrategy: (attempt) => Math.min(attempt * 100, 2000),
  };
}

/**
 * What a connection for blocking reads changes from {@link apiRedisOptions},
 * for `redis.duplicate(BLOCKING_CONNECTION_OVERRIDES)`: no command timeout
 * (ioredis' `blockingTimeout` bounds a block instead: its own BLOCK argument
 * plus a grace period, so a dead connection cannot hold a reader for ever),
 * and an offline queue, so a read sent while it connects waits for it.
 */
export const BLOCKING_CONNECTION_OVERRIDES: RedisOptions = {
  commandTimeout: undefined,
  enableOfflineQueue: true,
  maxRetriesPerRequest: 1,
  blockingTimeout: 30_000,
};

/** The API process's Redis connection (shared by its BullMQ queues). */
export function createApiRedis(url: string, options: ApiRedisOptions = {}): Redis {
  return new Redis(url, apiRedisOptions(options));
}
