import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { assertDistinctKeys, parseApiKeys, unnamedKeyTenant } from './api-keys.js';
import { createKeyring } from './keyring.js';

const options = { variable: 'MOA_API_KEYS', admin: false };
const key = 'sk-0123456789abcdefghij';

describe('parseApiKeys', () => {
  it('names an unnamed key key_ + 8 hex of its SHA-256', () => {
    const expected = `key_${createHash('sha256').update(key).digest('hex').slice(0, 8)}`;
    expect(parseApiKeys([key], options)).toEqual([{ tenant: expected, key, admin: false }]);
    expect(unnamedKeyTenant(key)).toBe(expected);
  });

  it('takes name:key, with the name as the tenant, trimming around the colon', () => {
    expect(parseApiKeys([`team-a:${key}`, ` team_b : ${key}x `], { ...options, admin: true })).toEqual([
      { tenant: 'team-a', key, admin: true },
      { tenant: 'team_b', key: `${key}x`, admin: true },
    ]);
  });

  it('keeps a colon inside the key when the text before it is no tenant name', () => {
    const withColon = `Team A:${key}`;
    expect(parseApiKeys([withColon], options)[0]).toMatchObject({ key: withColon });
    expect(parseApiKeys([`a:b:${key}`], options)[0]).toMatchObject({ tenant: 'a', key: `b:${key}` });
  });

  it('refuses keys under 20 characters, naming the variable and the entry but never the key', () => {
    expect(() => parseApiKeys([key, 'team:short-secret'], options)).toThrow(
      'MOA_API_KEYS: entry 2 (tenant "team") has a key of 12 characters; keys must be at least 20 characters',
    );
  });

  it('refuses a key configured twice', () => {
    expect(() => assertDistinctKeys(parseApiKeys([key, `b:${key}`], options))).toThrow(/twice/);
  });
});

describe('createKeyring', () => {
  const keys = [
    ...parseApiKeys([`a:${key}`], options),
    ...parseApiKeys([`ops:${key}-admin`], { variable: 'MOA_ADMIN_KEYS', admin: true }),
  ];
  const keyring = createKeyring(keys);

  it('identifies each key, and nothing close to one', () => {
    expect(keyring.identify(key)).toMatchObject({ tenant: 'a', admin: false });
    expect(keyring.identify(`${key}-admin`)).toMatchObject({ tenant: 'ops', admin: true });
    for (const near of [key.slice(0, -1), `${key}x`, key.toUpperCase(), '', ` ${key}`]) {
      expect(keyring.identify(near)).toBeUndefined();
    }
  });

  it('finds a key again by its digest, as sessions do', () => {
    const admin = keyring.identify(`${key}-admin`)!;
    expect(keyring.byDigest(keyring.digestOf(admin))).toBe(admin);
    expect(keyring.byDigest('0'.repeat(64))).toBeUndefined();
  });
});
