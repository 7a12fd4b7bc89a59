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
 *   at once instead of waiting in a queue, and is never sent later, when the
 *   connection is back, for a request that was already answered 503. (A
 *   command that timed out was sent: a paused Redis may still run it when it
 *   resumes. Clients make such retries safe with `Idempotency-Key`.)
 * - `maxRetriesPerRequest: 0`, `autoResendUnfulfilledCommands: false`: a
 *   command in flight when the connection drops fails at once and is not
 *   sent again after the reconnect (its request was already answered).
 * - Reconnects go on for ever, 100 ms apart growing to 2 s.
 *
 * Nothing blocks on this connection: `stream-hub.ts` follows request
 * streams with a pub/sub duplicate of it (subscriptions only) and short,
 * non-blocking `XREAD`s here, so `commandTimeout` never cuts a read short.
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

/** The API process's Redis connection (shared by its BullMQ queues). */
export function createApiRedis(url: string, options: ApiRedisOptions = {}): Redis {
  return new Redis(url, apiRedisOptions(options));
}
