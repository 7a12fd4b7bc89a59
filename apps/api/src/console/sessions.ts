import { createHash, randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';

/** How long a console login lasts: 12 hours. */
export const SESSION_TTL_SECONDS = 12 * 3600;

/** What a session stands for. The key itself is never stored, only its digest. */
export interface ConsoleSession {
  /** SHA-256 (hex) of the key that logged in: the session ends when that key is no longer configured. */
  keyDigest: string;
}

/** Console sessions in Redis, shared by every API replica. */
export interface SessionStore {
  /** Starts a session and returns its id: 256 random bits, base64url. */
  create(session: ConsoleSession): Promise<string>;
  read(id: string): Promise<ConsoleSession | undefined>;
  remove(id: string): Promise<void>;
}

/** Session ids as `create` makes them; anything else is not looked up. */
const SESSION_ID_PATTERN = /^[A-Za-z0-9_-]{43}$/;

/**
 * Creates the store. Redis holds a session under the SHA-256 of its id, so
 * a copy of Redis (a dump, a replica) yields no cookie that works.
 */
export function createSessionStore(redis: Redis, prefix: string): SessionStore {
  const keyOf = (id: string) => `${prefix}:moa-session:${createHash('sha256').update(id).digest('hex')}`;
  return {
    async create(session) {
      const id = randomBytes(32).toString('base64url');
      await redis.set(keyOf(id), JSON.stringify(session), 'EX', SESSION_TTL_SECONDS);
      return id;
    },
    async read(id) {
      if (!SESSION_ID_PATTERN.test(id)) return undefined;
      const stored = await redis.get(keyOf(id));
      if (!stored) return undefined;
      try {
        const parsed = JSON.parse(stored) as Partial<ConsoleSession>;
        return typeof parsed.keyDigest === 'string' ? { keyDigest: parsed.keyDigest } : undefined;
      } catch {
        return undefined;
      }
    },
    async remove(id) {
      if (SESSION_ID_PATTERN.test(id)) await redis.del(keyOf(id));
    },
  };
}
