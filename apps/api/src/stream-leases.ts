import { randomUUID } from 'node:crypto';
import type { MoaQueues } from '@moa-queue/contract';
import { quotasOf, type MoaConfig } from '@moa-queue/moa';
import type { Redis } from 'ioredis';
import { quotaExceeded } from './quota-error.js';

/** A tenant's lease set: lease ids scored by their expiry (Redis time, ms). */
export function streamLeasesKey(prefix: string, tenant: string): string {
  return `${prefix}:moa-stream-leases:${tenant}`;
}

/** One stream's lease: it counts toward its tenant's `maxStreams` until released or expired. */
export interface StreamLease {
  readonly id: string;
  readonly tenant: string;
  /** Gives the lease back; idempotent. */
  release(): Promise<void>;
}

/**
 * The `maxStreams` quota across every API replica: each SSE follower and
 * each waiting chat completion holds a lease in its tenant's sorted set,
 * scored by an expiry that this process renews while the stream lives and
 * removed when it ends. Expired leases do not count, so the leases of a
 * replica that crashed free themselves within one lease time.
 */
export interface StreamLeases {
  /** Takes a lease, or throws 429 `quota_streams` when the tenant holds `limit` already. */
  acquire(tenant: string, limit: number): Promise<StreamLease>;
  /** The tenant's live leases, over every replica. */
  count(tenant: string): Promise<number>;
  /** Leases this process holds. */
  held(): number;
}

/** Options of {@link createStreamLeases}. */
export interface StreamLeaseOptions {
  /** How long a lease lives without renewal. @defaultValue 30000 */
  ttlMs?: number;
  /** How often this process renews its leases. @defaultValue a third of `ttlMs` */
  renewMs?: number;
  /** `Retry-After` of a refusal, in seconds. @defaultValue 5 */
  retryAfterSeconds?: number;
}

/** Redis's clock in ms, so that replicas with skewed clocks agree on expiries. */
const NOW = `local t = redis.call('TIME') local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`;

/** KEYS[1] lease set; ARGV lease id, limit, ttl ms. Returns {1 | 0, live leases}. */
const ACQUIRE = `${NOW}
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local live = redis.call('ZCARD', KEYS[1])
if live >= tonumber(ARGV[2]) then return {0, live} end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], 2 * tonumber(ARGV[3]))
return {1, live + 1}`;

/** KEYS[1] lease set; ARGV ttl ms, lease ids. Puts back a lease that expired while its stream lived. */
const RENEW = `${NOW}
local expiry = now + tonumber(ARGV[1])
for index = 2, #ARGV do redis.call('ZADD', KEYS[1], expiry, ARGV[index]) end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('PEXPIRE', KEYS[1], 2 * tonumber(ARGV[1]))
return 1`;

/** KEYS[1] lease set. */
const COUNT = `${NOW}
return redis.call('ZCOUNT', KEYS[1], '(' .. now, '+inf')`;

/** Creates the leases of one process over `redis`. */
export function createStreamLeases(
  redis: Redis,
  prefix: string,
  options: StreamLeaseOptions = {},
): StreamLeases {
  const ttlMs = options.ttlMs ?? 30_000;
  const renewMs = options.renewMs ?? Math.max(1, Math.floor(ttlMs / 3));
  const retryAfterSeconds = options.retryAfterSeconds ?? 5;
  /** Lease ids this process holds, by tenant. */
  const held = new Map<string, Set<string>>();
  let renewTimer: NodeJS.Timeout | undefined;

  async function renewAll(): Promise<void> {
    await Promise.all(
      [...held].map(([tenant, ids]) =>
        ids.size === 0
          ? undefined
          : redis.eval(RENEW, 1, streamLeasesKey(prefix, tenant), ttlMs, ...ids).catch(() => undefined),
      ),
    );
  }

  function startRenewing(): void {
    if (renewTimer) return;
    renewTimer = setInterval(() => void renewAll(), renewMs);
    renewTimer.unref();
  }

  function forget(tenant: string, id: string): void {
    const ids = held.get(tenant);
    ids?.delete(id);
    if (ids && ids.size === 0) held.delete(tenant);
    if (held.size === 0 && renewTimer) {
      clearInterval(renewTimer);
      renewTimer = undefined;
    }
  }

  return {
    async acquire(tenant, limit) {
      const id = randomUUID();
      const [admitted] = (await redis.eval(
        ACQUIRE,
        1,
        streamLeasesKey(prefix, tenant),
        id,
        limit,
        ttlMs,
      )) as [number, number];
      if (admitted !== 1) {
        throw quotaExceeded({
          code: 'quota_streams',
          message: `Too many open streams: this key may follow ${limit} jobs or wait for ${limit} chat completions at once; retry when one has ended`,
          retryAfterSeconds,
        });
      }
      let ids = held.get(tenant);
      if (!ids) {
        ids = new Set();
        held.set(tenant, ids);
      }
      ids.add(id);
      startRenewing();
      let released = false;
      return {
        id,
        tenant,
        async release() {
          if (released) return;
          released = true;
          // Forgotten first, so no renewal sent after this can put it back.
          forget(tenant, id);
          // A lease that cannot be removed now (Redis trouble) expires by itself.
          await redis.zrem(streamLeasesKey(prefix, tenant), id).catch(() => undefined);
        },
      };
    },
    async count(tenant) {
      return Number(await redis.eval(COUNT, 1, streamLeasesKey(prefix, tenant)));
    },
    held() {
      let total = 0;
      for (const ids of held.values()) total += ids.size;
      return total;
    },
  };
}

const leasesByConnection = new WeakMap<Redis, Map<string, StreamLeases>>();

/** The process's leases for a connection and queue prefix (made on first use). */
export function streamLeasesFor(redis: Redis, prefix: string): StreamLeases {
  let byPrefix = leasesByConnection.get(redis);
  if (!byPrefix) {
    byPrefix = new Map();
    leasesByConnection.set(redis, byPrefix);
  }
  let leases = byPrefix.get(prefix);
  if (!leases) {
    leases = createStreamLeases(redis, prefix);
    byPrefix.set(prefix, leases);
  }
  return leases;
}

/**
 * Takes a stream lease for `tenant` within its `maxStreams` quota, or
 * throws the 429. Callers release it when the stream ends (`finally`).
 */
export function acquireStreamLease(
  dependencies: { redis: Redis; queues: MoaQueues; config: MoaConfig; streamLeases?: StreamLeases },
  tenant: string,
): Promise<StreamLease> {
  const leases = dependencies.streamLeases ?? streamLeasesFor(dependencies.redis, dependencies.queues.prefix);
  return leases.acquire(tenant, quotasOf(dependencies.config, tenant).maxStreams);
}
