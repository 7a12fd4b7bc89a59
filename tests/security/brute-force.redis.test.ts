import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { send } from './http-client.js';
import { createTestApi } from './test-api.js';
import { KEYS } from './keys.js';

const api = createTestApi('security-brute', inject('redisUrl'));
let port = 0;
beforeAll(async () => {
  port = await api.serve();
});
afterAll(() => api.close());

const bearer = (key: string) => ({ authorization: `Bearer ${key}` });

describe('failed authentications are throttled per client address', () => {
  it('answers 429 with Retry-After from the 11th wrong key a minute, before any key compare', async () => {
    const statuses: number[] = [];
    for (let attempt = 0; attempt < 10; attempt += 1) {
      const answer = await send({
        port,
        path: '/v1/models',
        headers: bearer(`wrong-key-${attempt}-0123456789`),
        from: '127.0.0.2',
      });
      statuses.push(answer.status);
    }
    expect(statuses).toEqual(Array(10).fill(401));
    const blocked = await send({
      port,
      path: '/v1/models',
      headers: bearer('wrong-key-again-0123456789'),
      from: '127.0.0.2',
    });
    expect(blocked.status).toBe(429);
    expect(blocked.json().error).toMatchObject({ code: 'too_many_auth_failures', type: 'rate_limit_error' });
    const retryAfter = Number(blocked.headers['retry-after']);
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);
    // Checked before the compare: even the right key from that address waits.
    expect(
      (await send({ port, path: '/v1/models', headers: bearer(KEYS.alpha), from: '127.0.0.2' })).status,
    ).toBe(429);
    // The console's login form shares the throttle.
    const login = await send({
      port,
      method: 'POST',
      path: '/console/login',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: `key=${KEYS.alpha}`,
      from: '127.0.0.2',
    });
    expect(login.status).toBe(429);
    expect(login.headers['retry-after']).toBeDefined();
  });

  it('never locks out a valid key from another address', async () => {
    expect(
      (await send({ port, path: '/v1/models', headers: bearer(KEYS.alpha), from: '127.0.0.3' })).status,
    ).toBe(200);
    const login = await send({
      port,
      method: 'POST',
      path: '/console/login',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: `key=${KEYS.beta}`,
      from: '127.0.0.3',
    });
    expect(login.status).toBe(303);
    expect(String(login.headers['set-cookie'])).toMatch(/^moa_console_session=/);
  });

  it('counts only failures: valid keys from an address never block it', async () => {
    for (let attempt = 0; attempt < 25; attempt += 1) {
      const answer = await send({ port, path: '/v1/models', headers: bearer(KEYS.beta), from: '127.0.0.4' });
      expect(answer.status).toBe(200);
    }
  });

  it('counts failed console logins like failed bearer keys', async () => {
    const statuses: number[] = [];
    for (let attempt = 0; attempt < 11; attempt += 1) {
      const answer = await send({
        port,
        method: 'POST',
        path: '/console/login',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: `key=guess-${attempt}-0123456789abcdef`,
        from: '127.0.0.5',
      });
      statuses.push(answer.status);
    }
    expect(statuses.slice(0, 10)).toEqual(Array(10).fill(303));
    expect(statuses[10]).toBe(429);
    expect(
      (await send({ port, path: '/v1/models', headers: bearer(KEYS.alpha), from: '127.0.0.5' })).status,
    ).toBe(429);
  });

  it('takes the client address from X-Forwarded-For only when MOA_TRUST_PROXY trusts the proxy', async () => {
    const trusting = await api.serve({ trustProxy: 'loopback' });
    const forwarded = (client: string, key: string) =>
      send({
        port: trusting,
        path: '/v1/models',
        headers: { ...bearer(key), 'x-forwarded-for': client },
        from: '127.0.0.6',
      });
    for (let attempt = 0; attempt < 10; attempt += 1)
      expect((await forwarded('203.0.113.7', `nope-${attempt}-0123456789abcdef`)).status).toBe(401);
    expect((await forwarded('203.0.113.7', KEYS.alpha)).status).toBe(429);
    // Another client behind the same proxy is not held back.
    expect((await forwarded('203.0.113.8', KEYS.alpha)).status).toBe(200);

    // Without trust, the header is ignored: the proxy's own address (127.0.0.7) is the client.
    for (let attempt = 0; attempt < 10; attempt += 1) {
      const answer = await send({
        port,
        path: '/v1/models',
        headers: {
          ...bearer(`nope-${attempt}-0123456789abcdef`),
          'x-forwarded-for': `198.51.100.${attempt}`,
        },
        from: '127.0.0.7',
      });
      expect(answer.status).toBe(401);
    }
    expect(
      (
        await send({
          port,
          path: '/v1/models',
          headers: { ...bearer(KEYS.alpha), 'x-forwarded-for': '198.51.100.99' },
          from: '127.0.0.7',
        })
      ).status,
    ).toBe(429);
  });
});
