import { DEFAULT_QUEUE_PREFIX } from '@moa-queue/contract';
import { describe, expect, it } from 'vitest';
import { checkListenPolicy, isLoopbackHost, loadApiConfig } from './config.js';

describe('loadApiConfig', () => {
  it('has the documented defaults', () => {
    const config = loadApiConfig({});
    expect(config).toMatchObject({
      redisUrl: 'redis://127.0.0.1:6379',
      port: 8080,
      host: '127.0.0.1',
      queuePrefix: DEFAULT_QUEUE_PREFIX,
      apiKeys: [],
      allowUnauthenticated: false,
      rateLimitRpm: 0,
      maxBodyBytes: 4_194_304,
      webhookSecret: undefined,
      redisCommandTimeoutMs: 2000,
      headersTimeoutMs: 20_000,
      bodyTimeoutMs: 60_000,
      uploadTimeoutMs: 600_000,
      maxConnections: 10_000,
      filesDir: undefined,
      logLevel: 'info',
    });
    expect(Object.keys(config.moa.presets)).toEqual(expect.arrayContaining(['moa', 'moa-lite', 'self-moa']));
  });

  it('reads every variable', () => {
    const config = loadApiConfig({
      REDIS_URL: 'redis://redis.internal:6380/2',
      PORT: '9090',
      HOST: '0.0.0.0',
      MOA_QUEUE_PREFIX: '{moa}',
      MOA_API_KEYS: 'team-a:aaaaaaaaaaaaaaaaaaaaaaaa',
      MOA_ADMIN_KEYS: 'ops:zzzzzzzzzzzzzzzzzzzzzzzz',
      MOA_TRUST_PROXY: 'loopback',
      MOA_AUTH: 'keys',
      MOA_RATE_LIMIT_RPM: '120',
      MOA_MAX_BODY_BYTES: '65536',
      MOA_WEBHOOK_SECRET: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
      MOA_REDIS_COMMAND_TIMEOUT_MS: '1500',
      MOA_HEADERS_TIMEOUT_MS: '10000',
      MOA_BODY_TIMEOUT_MS: '30000',
      MOA_UPLOAD_TIMEOUT_MS: '1200000',
      MOA_MAX_CONNECTIONS: '500',
      MOA_FILES_DIR: '/data/files',
      LOG_LEVEL: 'debug',
    });
    expect(config).toMatchObject({
      redisUrl: 'redis://redis.internal:6380/2',
      port: 9090,
      host: '0.0.0.0',
      queuePrefix: '{moa}',
      apiKeys: ['team-a:aaaaaaaaaaaaaaaaaaaaaaaa'],
      adminKeys: ['ops:zzzzzzzzzzzzzzzzzzzzzzzz'],
      trustProxy: 'loopback',
      rateLimitRpm: 120,
      maxBodyBytes: 65_536,
      webhookSecret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
      redisCommandTimeoutMs: 1500,
      headersTimeoutMs: 10_000,
      bodyTimeoutMs: 30_000,
      uploadTimeoutMs: 1_200_000,
      maxConnections: 500,
      filesDir: '/data/files',
      logLevel: 'debug',
    });
  });

  it('refuses a relative MOA_FILES_DIR (it would depend on the working directory of each process)', () => {
    expect(() => loadApiConfig({ MOA_FILES_DIR: './files' })).toThrow(
      /MOA_FILES_DIR: must be an absolute path/,
    );
  });

  it.each(['abc', '-1', '65536', '80.5', '99999999'])('refuses PORT=%s, naming the variable', (port) => {
    expect(() => loadApiConfig({ PORT: port })).toThrow(/PORT/);
  });

  it('treats empty variables as unset rather than as 0 or an error', () => {
    const config = loadApiConfig({
      PORT: '',
      MOA_MAX_BODY_BYTES: '',
      MOA_AUTH: '',
      HOST: ' ',
      MOA_CONFIG: '',
    });
    expect(config.port).toBe(8080);
    expect(config.maxBodyBytes).toBe(4_194_304);
    expect(config.host).toBe('127.0.0.1');
    expect(config.allowUnauthenticated).toBe(false);
  });

  it.each([
    ['MOA_MAX_BODY_BYTES', '100'],
    ['MOA_MAX_BODY_BYTES', 'lots'],
    ['MOA_RATE_LIMIT_RPM', '-5'],
    ['MOA_AUTH', 'maybe'],
    ['LOG_LEVEL', 'loud'],
    ['REDIS_URL', 'not a url'],
    ['MOA_REDIS_COMMAND_TIMEOUT_MS', '0'],
    ['MOA_HEADERS_TIMEOUT_MS', '30000'],
    ['MOA_BODY_TIMEOUT_MS', 'soon'],
    ['MOA_UPLOAD_TIMEOUT_MS', '-1'],
    ['MOA_MAX_CONNECTIONS', '0'],
  ])('refuses %s=%s, naming the variable', (name, value) => {
    expect(() => loadApiConfig({ [name]: value })).toThrow(new RegExp(`^Invalid environment: ${name}:`));
  });

  it('splits MOA_API_KEYS on commas, trimming and dropping empty entries', () => {
    const [k1, k2, k3] = ['1', '2', '3'].map((digit) => digit.repeat(20));
    expect(loadApiConfig({ MOA_API_KEYS: ` ${k1} , ${k2},,${k3} , ` }).apiKeys).toEqual([k1, k2, k3]);
    expect(loadApiConfig({ MOA_API_KEYS: ' , ' }).apiKeys).toEqual([]);
  });

  it.each(['whsec_c2VjcmV0', 'whsec_c2VjcmV0LWtleQ==', 'whsec_a+b/c='])(
    'accepts MOA_WEBHOOK_SECRET=%s',
    (secret) => {
      expect(loadApiConfig({ MOA_WEBHOOK_SECRET: secret }).webhookSecret).toBe(secret);
    },
  );

  it.each(['c2VjcmV0', 'whsec_', 'whsec_not base64!', 'WHSEC_c2VjcmV0', 'whsec_c2V=jcmV0'])(
    'refuses MOA_WEBHOOK_SECRET=%s without echoing it',
    (secret) => {
      let message = '';
      try {
        loadApiConfig({ MOA_WEBHOOK_SECRET: secret });
      } catch (error) {
        message = (error as Error).message;
      }
      expect(message).toMatch(/^Invalid environment: MOA_WEBHOOK_SECRET:/);
      if (secret.length > 'whsec_'.length) expect(message).not.toContain(secret);
    },
  );
});

describe('isLoopbackHost', () => {
  it.each(['127.0.0.1', '127.1.2.3', 'localhost', '::1', '[::1]'])('%s is loopback', (host) => {
    expect(isLoopbackHost(host)).toBe(true);
  });

  it.each(['0.0.0.0', '::', '10.0.0.1', '192.168.1.10', 'example.com', '127.0.0.1.example.com'])(
    '%s is not loopback',
    (host) => {
      expect(isLoopbackHost(host)).toBe(false);
    },
  );
});

describe('checkListenPolicy', () => {
  it('allows loopback without keys', () => {
    expect(checkListenPolicy(loadApiConfig({}))).toEqual({});
    expect(checkListenPolicy(loadApiConfig({ HOST: 'localhost' }))).toEqual({});
  });

  it('refuses 0.0.0.0 without keys, saying how to fix it', () => {
    const policy = checkListenPolicy(loadApiConfig({ HOST: '0.0.0.0' }));
    expect(policy.warning).toBeUndefined();
    expect(policy.error).toMatch(/0\.0\.0\.0/);
    expect(policy.error).toMatch(/MOA_API_KEYS/);
    expect(policy.error).toMatch(/MOA_AUTH=none/);
  });

  it('refuses 0.0.0.0 when MOA_API_KEYS holds only separators', () => {
    expect(checkListenPolicy(loadApiConfig({ HOST: '0.0.0.0', MOA_API_KEYS: ' , ' })).error).toBeDefined();
  });

  it('warns, and allows, 0.0.0.0 without keys when MOA_AUTH=none', () => {
    const policy = checkListenPolicy(loadApiConfig({ HOST: '0.0.0.0', MOA_AUTH: 'none' }));
    expect(policy.error).toBeUndefined();
    expect(policy.warning).toMatch(/0\.0\.0\.0/);
  });

  it('allows 0.0.0.0 with keys', () => {
    const key = 'k'.repeat(24);
    expect(checkListenPolicy(loadApiConfig({ HOST: '0.0.0.0', MOA_API_KEYS: `${key}1,${key}2` }))).toEqual(
      {},
    );
    expect(checkListenPolicy(loadApiConfig({ HOST: '::', MOA_API_KEYS: key, MOA_AUTH: 'keys' }))).toEqual({});
    expect(checkListenPolicy(loadApiConfig({ HOST: '::', MOA_ADMIN_KEYS: key }))).toEqual({});
  });
});

describe('API keys in the environment', () => {
  it.each([
    ['MOA_API_KEYS', 'short-key'],
    ['MOA_ADMIN_KEYS', 'ops:short-key'],
    ['MOA_API_KEYS', `${'a'.repeat(30)},tiny`],
  ])('refuses a key under 20 characters in %s, naming the variable and not the key', (name, value) => {
    let message = '';
    try {
      loadApiConfig({ [name]: value });
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toMatch(new RegExp(`^${name}: entry \\d+.*at least 20 characters`));
    expect(message).not.toContain('short-key');
    expect(message).not.toContain('tiny');
  });

  it('refuses the same key twice, in either variable', () => {
    const key = 'x'.repeat(24);
    expect(() => loadApiConfig({ MOA_API_KEYS: `${key},b:${key}` })).toThrow(/configured twice/);
    expect(() => loadApiConfig({ MOA_API_KEYS: key, MOA_ADMIN_KEYS: key })).toThrow(/configured twice/);
  });

  it.each([
    [undefined, false],
    ['false', false],
    ['true', true],
    ['2', 2],
    ['loopback, 10.0.0.0/8', 'loopback, 10.0.0.0/8'],
  ])('reads MOA_TRUST_PROXY=%s as %s', (value, expected) => {
    expect(loadApiConfig(value === undefined ? {} : { MOA_TRUST_PROXY: value }).trustProxy).toEqual(expected);
  });
});
