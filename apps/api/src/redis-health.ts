import { createConnectionStateLogger, withTimeout } from '@moa-queue/contract';
import { ReplyError, type Redis } from 'ioredis';
import type { Logger } from 'pino';
import { redisFaultOf, type RedisFault } from './redis-errors.js';

/** What {@link probeRedis} found; `error` is what Redis (or the client) said, or an OOM reply for a full Redis. */
export type RedisHealth = { ok: true } | { ok: false; fault: RedisFault; reason: string; error: Error };

function infoField(info: string, name: string): number {
  const match = new RegExp(`^${name}:(\\d+)`, 'm').exec(info);
  return match ? Number(match[1]) : 0;
}

/**
 * Whether Redis can take this API's requests now, within `timeoutMs` whatever
 * the connection does: `PING` (refused while Redis loads its data, unanswered
 * while it is paused) and `INFO memory`, which tells a Redis at `maxmemory`
 * (it refuses every write with OOM, though it still answers reads and PING).
 */
export async function probeRedis(redis: Redis, timeoutMs = 2000): Promise<RedisHealth> {
  try {
    const info = await withTimeout(
      (async () => {
        await redis.ping();
        return redis.info('memory');
      })(),
      timeoutMs,
    );
    const maxmemory = infoField(info, 'maxmemory');
    const used = infoField(info, 'used_memory') - infoField(info, 'mem_not_counted_for_evict');
    if (maxmemory > 0 && used > maxmemory) {
      const reason = `used_memory ${used} > maxmemory ${maxmemory}`;
      // What the next write would be told: the reply error, so it classifies as every OOM does.
      const error = new ReplyError(
        `OOM command not allowed when used memory > 'maxmemory' (${reason})`,
      ) as Error;
      return { ok: false, fault: 'full', reason, error };
    }
    return { ok: true };
  } catch (caught) {
    const error = caught instanceof Error ? caught : new Error(String(caught));
    return { ok: false, fault: redisFaultOf(error) ?? 'unavailable', reason: error.message, error };
  }
}

/** Options of {@link watchRedisHealth}. */
export interface RedisHealthWatchOptions {
  /** How often Redis is probed while it serves (a paused or full Redis sends no event). @defaultValue 5000 */
  intervalMs?: number;
  /** How often while it does not, so the recovery is noticed soon. @defaultValue 1000 */
  troubleIntervalMs?: number;
  /** Bound of one probe. @defaultValue 2000 */
  timeoutMs?: number;
}

/** A running {@link watchRedisHealth}. */
export interface RedisHealthWatch {
  /** Reports an error of the connection or a queue: counted, logged only when it starts an outage. */
  noteError(error: Error): void;
  /** False from the start of an outage until its recovery. */
  readonly healthy: boolean;
  stop(): void;
}

/**
 * Logs Redis trouble of the API process once and its end once, not once per
 * failed command, with the shared `createConnectionStateLogger` (field
 * `redis: "api"`): `warn` "redis unavailable: waiting for it to recover"
 * when an outage starts, `info` "redis available again" with how long it
 * lasted and how many errors were held back. An outage starts with a
 * connection error or close (at once), or with a failed {@link probeRedis}
 * (every `intervalMs`: a paused Redis or one at `maxmemory` sends no
 * event); it ends when a probe succeeds (every `troubleIntervalMs`).
 */
export function watchRedisHealth(
  redis: Redis,
  logger: Logger,
  options: RedisHealthWatchOptions = {},
): RedisHealthWatch {
  const timeoutMs = options.timeoutMs ?? 2000;
  const state = createConnectionStateLogger(logger, 'api', {
    watchIntervalMs: options.intervalMs ?? 5000,
    probeIntervalMs: options.troubleIntervalMs ?? 1000,
    probeTimeoutMs: timeoutMs,
    probe: async () => {
      const health = await probeRedis(redis, timeoutMs);
      if (!health.ok) throw health.error;
    },
  });
  let lastError: Error | undefined;

  const onError = (error: Error) => {
    lastError = error;
    state.onError(error);
  };
  const onClose = () => {
    if (state.healthy) state.onError(lastError ?? new Error('Connection is closed.'));
  };
  redis.on('error', onError);
  redis.on('close', onClose);

  return {
    noteError(error) {
      state.onError(error);
    },
    get healthy() {
      return state.healthy;
    },
    stop() {
      state.close();
      redis.off('error', onError);
      redis.off('close', onClose);
    },
  };
}
