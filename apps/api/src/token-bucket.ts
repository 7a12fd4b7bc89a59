import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Redis } from 'ioredis';

const SCRIPT = readFileSync(fileURLToPath(new URL('../lua/token-bucket.lua', import.meta.url)), 'utf8');
const COMMAND = 'moaTakeToken';

/** The outcome of taking a token. */
export interface TokenTaken {
  allowed: boolean;
  /** Whole tokens left after this request. */
  remaining: number;
  /** How long until one token is back, when refused; 0 when allowed. */
  retryAfterMs: number;
  /** How long until the bucket is full again. */
  resetMs: number;
}

type WithCommand = Redis & {
  [COMMAND](key: string, capacity: number, ratePerMs: number): Promise<[number, number, number, number]>;
};

/**
 * A token bucket in Redis, shared by every API replica: `capacity` requests
 * at once, refilled at `capacity` per minute. Unlike a fixed minute window it
 * allows no double burst at a window's edge, and a caller refused waits only
 * until the next token, not until the minute ends. The script is
 * `lua/token-bucket.lua`, loaded once per connection with `defineCommand`.
 */
export function createTokenBucket(redis: Redis): (key: string, perMinute: number) => Promise<TokenTaken> {
  if (!(COMMAND in redis)) redis.defineCommand(COMMAND, { numberOfKeys: 1, lua: SCRIPT });
  const commands = redis as WithCommand;
  return async (key, perMinute) => {
    const [allowed, remaining, retryAfterMs, resetMs] = await commands[COMMAND](
      key,
      perMinute,
      perMinute / 60_000,
    );
    return { allowed: allowed === 1, remaining, retryAfterMs, resetMs };
  };
}
