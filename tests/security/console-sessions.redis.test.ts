import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { send } from './http-client.js';
import { createTestApi } from './test-api.js';
import { KEYS } from './keys.js';

const api = createTestApi('security-sessions', inject('redisUrl'));
const { redis, queues, prefix } = api;
let port = 0;
let origin = '';
beforeAll(async () => {
  port = await api.serve();
  origin = `http://127.0.0.1:${port}`;
});
afterAll(() => api.close());

async function login(key: string, options: { port?: number; headers?: Record<string, string> } = {}) {
  const answer = await send({
    port: options.port ?? port,
    method: 'POST',
    path: '/console/login',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...options.headers },
    body: `key=${encodeURIComponent(key)}&next=%2Fconsole`,
  });
  const setCookie = String(answer.headers['set-cookie'] ?? '');
  return { answer, setCookie, cookie: setCookie.split(';')[0] ?? '' };
}

describe('console sessions', () => {
  it('exchanges the key for an opaque session id: HttpOnly, SameSite=Strict, Path=/, 12 h', async () => {
    const { answer, setCookie, cookie } = await login(KEYS.alpha);
    expect(answer.status).toBe(303);
    const id = /^moa_console_session=([A-Za-z0-9_-]+)$/.exec(cookie)?.[1] ?? '';
    // 43 base64url characters: 256 random bits (at least 128 are required).
    expect(id).toHaveLength(43);
    expect(setCookie).toContain('HttpOnly');
    expect(setCookie).toContain('SameSite=Strict');
    expect(setCookie).toContain('Path=/');
    expect(setCookie).toContain(`Max-Age=${12 * 3600}`);
    expect(setCookie).not.toContain('Secure');
    expect(setCookie).not.toContain(KEYS.alpha);
    // Redis holds neither the key nor the session id itself.
    const keys = await redis.keys(`${prefix}:moa-session:*`);
    expect(keys.length).toBeGreaterThan(0);
    for (const key of keys) {
      expect(key).not.toContain(id);
      const value = (await redis.get(key)) ?? '';
      expect(value).not.toContain(KEYS.alpha);
      expect(await redis.ttl(key)).toBeGreaterThan(12 * 3600 - 60);
    }
    const two = await login(KEYS.alpha);
    expect(two.cookie).not.toBe(cookie);
  });

  it('sets Secure behind a trusted TLS proxy, and only then', async () => {
    const trusting = await api.serve({ trustProxy: 'loopback' });
    const https = { 'x-forwarded-proto': 'https' };
    expect((await login(KEYS.alpha, { port: trusting, headers: https })).setCookie).toContain('; Secure');
    expect((await login(KEYS.alpha, { headers: https })).setCookie).not.toContain('Secure');
  });

  it('logout deletes the session: a copy of the cookie stops working', async () => {
    const { cookie } = await login(KEYS.alpha);
    expect((await send({ port, path: '/console/api/jobs', headers: { cookie } })).status).toBe(200);
    const logout = await send({ port, method: 'POST', path: '/console/logout', headers: { cookie, origin } });
    expect(logout.status).toBe(303);
    expect(String(logout.headers['set-cookie'])).toContain('Max-Age=0');
    expect((await send({ port, path: '/console/api/jobs', headers: { cookie } })).status).toBe(401);
  });

  it('ends a session whose key is no longer configured', async () => {
    const { cookie } = await login(KEYS.beta);
    const withoutBeta = await api.serve({ apiKeys: [`alpha:${KEYS.alpha}`] });
    expect((await send({ port: withoutBeta, path: '/console/api/jobs', headers: { cookie } })).status).toBe(
      401,
    );
    expect((await send({ port, path: '/console/api/jobs', headers: { cookie } })).status).toBe(200);
  });

  it('keeps the session cookie to the console: the /v1 API wants a bearer key', async () => {
    const { cookie } = await login(KEYS.alpha);
    const answer = await send({ port, path: '/v1/models', headers: { cookie } });
    expect(answer.status).toBe(401);
    expect(answer.json().error?.code).toBe('missing_api_key');
  });

  it('refuses a cookie-authenticated state change from another origin (CSRF), allows it from this one', async () => {
    const { cookie } = await login(KEYS.admin);
    const pause = (headers: Record<string, string>) =>
      send({
        port,
        method: 'PUT',
        path: '/admin/queues/api/queues/moa-webhooks/pause',
        headers: { cookie, ...headers },
      });
    for (const headers of [
      { origin: 'https://evil.example' } as Record<string, string>,
      { origin: 'null' },
      { 'sec-fetch-site': 'cross-site' },
      { 'sec-fetch-site': 'same-site', origin },
      {},
    ]) {
      const answer = await pause(headers);
      expect(answer.status, JSON.stringify(headers)).toBe(403);
      expect(answer.json().error?.code).toBe('cross_origin_refused');
    }
    expect(await queues.webhooks.isPaused()).toBe(false);
    expect((await pause({ origin })).status).toBe(200);
    expect(await queues.webhooks.isPaused()).toBe(true);
    expect(
      (
        await send({
          port,
          method: 'PUT',
          path: '/admin/queues/api/queues/moa-webhooks/resume',
          headers: { cookie, 'sec-fetch-site': 'same-origin' },
        })
      ).status,
    ).toBe(200);
    expect(await queues.webhooks.isPaused()).toBe(false);
    // Reads need no origin; a bearer key (not sent by browsers on their own) needs none either.
    expect((await send({ port, path: '/admin/queues/api/queues', headers: { cookie } })).status).toBe(200);
    expect(
      (
        await send({
          port,
          method: 'PUT',
          path: '/admin/queues/api/queues/moa-webhooks/resume',
          headers: { authorization: `Bearer ${KEYS.admin}`, origin: 'https://evil.example' },
        })
      ).status,
    ).toBe(200);
  });

  it('refuses a login posted from another site (login CSRF)', async () => {
    const { answer, setCookie } = await login(KEYS.alpha, { headers: { origin: 'https://evil.example' } });
    expect(answer.status).toBe(403);
    expect(setCookie).toBe('');
  });

  it('gives a tenant session the console but not bull-board; an admin session both', async () => {
    const tenant = (await login(KEYS.alpha)).cookie;
    const admin = (await login(KEYS.admin)).cookie;
    expect((await send({ port, path: '/console/api/jobs', headers: { cookie: tenant } })).status).toBe(200);
    expect((await send({ port, path: '/admin/queues', headers: { cookie: tenant } })).status).toBe(403);
    expect((await send({ port, path: '/admin/queues', headers: { cookie: admin } })).status).toBe(200);
    const session = await send({ port, path: '/console/api/session', headers: { cookie: admin } });
    expect(session.json()).toEqual({ auth_required: true, tenant: 'ops', admin: true });
  });
});
