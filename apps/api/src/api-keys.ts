import { createHash } from 'node:crypto';
import { TENANT_NAME_PATTERN } from '@moa-queue/moa';

/** Keys shorter than this stop the API at start: they could be guessed. */
export const MIN_API_KEY_LENGTH = 20;

/** A configured bearer key and who it speaks for. */
export interface ApiKey {
  /** The tenant that owns what this key creates. */
  tenant: string;
  key: string;
  /** Admin keys see and act on every tenant's objects and alone reach bull-board. */
  admin: boolean;
}

/** The tenant of an unnamed key: `key_` and the first 8 hex characters of its SHA-256. */
export function unnamedKeyTenant(key: string): string {
  return `key_${createHash('sha256').update(key).digest('hex').slice(0, 8)}`;
}

/**
 * Parses the entries of `MOA_API_KEYS` or `MOA_ADMIN_KEYS`: each is `key` or
 * `name:key`. An entry is named when the text before its first `:` is a
 * tenant name (`[a-z0-9_-]{1,64}`); otherwise the whole entry is the key.
 * Errors name the variable and the entry's position, never the key.
 *
 * @throws Error for a key shorter than {@link MIN_API_KEY_LENGTH} characters.
 */
export function parseApiKeys(
  entries: readonly string[],
  options: { variable: string; admin: boolean },
): ApiKey[] {
  return entries
    .map((entry) => entry.trim())
    .filter(Boolean)
    .map((entry, index) => {
      const separator = entry.indexOf(':');
      const name = separator > 0 ? entry.slice(0, separator).trim() : undefined;
      const named = name !== undefined && TENANT_NAME_PATTERN.test(name);
      const key = named ? entry.slice(separator + 1).trim() : entry;
      if (key.length < MIN_API_KEY_LENGTH) {
        throw new Error(
          `${options.variable}: entry ${index + 1}${named ? ` (tenant "${name}")` : ''} has a key of ` +
            `${key.length} characters; keys must be at least ${MIN_API_KEY_LENGTH} characters`,
        );
      }
      return { tenant: named ? name : unnamedKeyTenant(key), key, admin: options.admin };
    });
}

/** Splits a comma-separated variable into its entries. */
export function splitKeyList(value: string | undefined): string[] {
  return (value ?? '')
    .split(',')
    .map((entry) => entry.trim())
    .filter(Boolean);
}

/**
 * Checks that no key is configured twice (in either variable): one key must
 * mean one tenant and one role.
 *
 * @throws Error naming the variables.
 */
export function assertDistinctKeys(keys: readonly ApiKey[]): void {
  const seen = new Set<string>();
  for (const { key } of keys) {
    if (seen.has(key)) {
      throw new Error('MOA_API_KEYS / MOA_ADMIN_KEYS: the same key is configured twice');
    }
    seen.add(key);
  }
}
