import type { Redis } from 'ioredis';

/** Options of {@link createAuthThrottle}. */
export interface AuthThrottleOptions {
  /** Failures from one address within the window that block it. @defaultValue 10 */
  maxFailures?: number;
  /** The window, from an address's first failure. @defaultValue 60 */
  windowSeconds?: number;
}

/** Failed authentications counted per client address, shared by every API replica through Redis. */
export interface AuthThrottle {
  /** Seconds until the address may try again, or 0 when it is not blocked. */
  blockedFor(address: string): Promise<number>;
  /** Counts one failed authentication from the address. */
  recordFailure(address: string): Promise<void>;
}

/**
 * Throttles key guessing: past `maxFailures` failures from one address in a
 * window, that address gets 429 until the window ends — checked before any
 * key compare. Only failures count, so a valid key from another address
 * (or the same one, before it is blocked) is never held back by traffic
 * that authenticates.
 */
export function createAuthThrottle(
  redis: Redis,
  prefix: string,
  options: AuthThrottleOptions = {},
): AuthThrottle {
  const maxFailures = options.maxFailures ?? 10;
  const windowSeconds = options.windowSeconds ?? 60;
  const keyOf = (address: string) => `${prefix}:moa-auth-failures:${address}`;
  return {
    async blockedFor(address) {
      const [[, count], [, ttl]] = (await redis.multi().get(keyOf(address)).ttl(keyOf(address)).exec()) as [
        [unknown, string | null],
        [unknown, number],
      ];
      if (Number(count ?? 0) < maxFailures) return 0;
      return Math.max(1, ttl);
    },
    async recordFailure(address) {
      await redis.multi().incr(keyOf(address)).expire(keyOf(address), windowSeconds, 'NX').exec();
    },
  };
}
