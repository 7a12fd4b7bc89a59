import { createHash, timingSafeEqual } from 'node:crypto';
import type { ApiKey } from './api-keys.js';

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}

/** The configured keys, looked up without leaking which one matched. */
export interface Keyring {
  /** How many keys are configured; 0 means the API is open (loopback only). */
  readonly size: number;
  /** The key a caller presented, compared in constant time against every configured key. */
  identify(given: string): ApiKey | undefined;
  /** The key with this SHA-256 digest (hex): how a console session finds its key again. */
  byDigest(hexDigest: string): ApiKey | undefined;
  /** The SHA-256 digest (hex) of a key, as sessions store it. */
  digestOf(key: ApiKey): string;
}

/**
 * Builds the keyring. A presented key is hashed and compared with
 * `timingSafeEqual` against every configured digest, so neither its length,
 * its content nor which key matched shows in the timing.
 */
export function createKeyring(keys: readonly ApiKey[]): Keyring {
  const entries = keys.map((key) => ({ key, digest: digest(key.key) }));
  const byHex = new Map(entries.map((entry) => [entry.digest.toString('hex'), entry.key]));
  return {
    size: entries.length,
    identify(given) {
      const candidate = digest(given);
      let match: ApiKey | undefined;
      for (const entry of entries) {
        if (timingSafeEqual(candidate, entry.digest)) match = entry.key;
      }
      return match;
    },
    byDigest: (hexDigest) => byHex.get(hexDigest),
    digestOf: (key) => digest(key.key).toString('hex'),
  };
}
