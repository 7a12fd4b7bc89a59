import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { redisFaultOf, type RedisFault } from './redis-errors.js';

/** What {@link probeRedis} found. */
export type RedisHealth = { ok: true } | { ok: false; fault: RedisFault; reason: string };

function withTimeout<T>(promise: Promise<T>, milliseconds: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error('Command timed out')), milliseconds);
    timer.unref();
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

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
      return { ok: false, fault: 'full', reason: `used_memory ${used} > maxmemory ${maxmemory}` };
    }
    return { ok: true };
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    return { ok: false, fault: redisFaultOf(error) ?? 'unavailable', reason };
  }
}

/** Options of {@link watchRedisHealth}. */
export interface RedisHealthWatchOptions {
  /** How often Redis is probed while it is fine. @defaultValue 5000 */
  intervalMs?: number;
  /** How often while it is not, so the recovery is noticed soon. @defaultValue 1000 */
  troubleIntervalMs?: number;
  /** Bound of one probe. @defaultValue 2000 */
  timeoutMs?: number;
}

/** A running {@link watchRedisHealth}. */
export interface RedisHealthWatch {
  /** Counts a connection error (of the client or a BullMQ queue) without logging it. */
  noteError(error: Error): void;
  /** The last state seen: `up`, or the fault. */
  state(): 'starting' | 'up' | RedisFault;
  stop(): void;
}

/**
 * Logs Redis trouble once and its end once, not once per failed command:
 * `warn` "redis unavailable" / "redis full" when it starts (a dropped
 * connection at once, a paused or full Redis at the next probe), `info`
 * "redis recovered" with how long it lasted and how many connection errors
 * were swallowed meanwhile. The client's and the queues' `error` events
 * (one per reconnect attempt) are counted, never logged one by one.
 */
export function watchRedisHealth(
  redis: Redis,
  logger: Logger,
  options: RedisHealthWatchOptions = {},
): RedisHealthWatch {
  const intervalMs = options.intervalMs ?? 5000;
  const troubleIntervalMs = options.troubleIntervalMs ?? 1000;
  const timeoutMs = options.timeoutMs ?? 2000;
  let state: 'starting' | 'up' | RedisFault = 'starting';
  let since = Date.now();
  let errors = 0;
  let lastError: string | undefined;
  let stopped = false;
  let probing = false;
  let timer: NodeJS.Timeout | undefined;

  function down(fault: RedisFault, reason: string): void {
    if (state === fault) return;
    if (state === 'up' || state === 'starting') since = Date.now();
    state = fault;
    logger.warn(
      { fault, reason },
      fault === 'full' ? 'redis full: writes refused, requests answer 503' : 'redis unavailable: requests answer 503',
    );
  }

  function up(): void {
    if (state === 'up') return;
    if (state === 'starting') logger.info('redis connected');
    else logger.info({ downMs: Date.now() - since, errors, lastError }, 'redis recovered');
    state = 'up';
    errors = 0;
    lastError = undefined;
  }

  function schedule(): void {
    if (stopped) return;
    clearTimeout(timer);
    timer = setTimeout(probe, state === 'up' ? intervalMs : troubleIntervalMs);
    timer.unref();
  }

  async function probe(): Promise<void> {
    if (stopped || probing) return;
    probing = true;
    try {
      const health = await probeRedis(redis, timeoutMs);
      if (stopped) return;
      if (health.ok) up();
      else if (!(state === 'starting' && redis.status !== 'ready' && errors === 0)) {
        // Not yet connected and no error seen: still starting, not an outage.
        down(health.fault, health.reason);
      }
    } finally {
      probing = false;
      schedule();
    }
  }

  const onError = (error: Error) => {
    errors += 1;
    lastError = error.message;
    if (state === 'up') down('unavailable', error.message);
  };
  const onClose = () => {
    if (state === 'up') down('unavailable', lastError ?? 'connection closed');
  };
  const onReady = () => void probe();
  redis.on('error', onError);
  redis.on('close', onClose);
  redis.on('ready', onReady);
  if (redis.status === 'ready') void probe();
  else schedule();

  return {
    noteError(error) {
      errors += 1;
      lastError = error.message;
    },
    state: () => state,
    stop() {
      stopped = true;
      clearTimeout(timer);
      redis.off('error', onError);
      redis.off('close', onClose);
      redis.off('ready', onReady);
    },
  };
}
