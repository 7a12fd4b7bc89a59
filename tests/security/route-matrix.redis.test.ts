import { readdirSync } from 'node:fs';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { CONSOLE_PUBLIC_DIR } from '../../apps/api/src/console/public-dir.js';
import { PUBLIC_PATHS } from '../../apps/api/src/middleware/access-gate.js';
import { createTestApi } from './test-api.js';
import { KEYS } from './keys.js';
import { concretePath, pathVariants, registeredRoutes } from './route-walk.js';

const api = createTestApi('security-matrix', inject('redisUrl'));
const { app } = api;

const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const;

/** Real ids, so a route that would answer for an existing object is asked about one. */
const ids: Record<string, string> = {};

beforeAll(async () => {
  const created = await request(app)
    .post('/v1/jobs')
    .set('authorization', `Bearer ${KEYS.alpha}`)
    .send({ messages: [{ role: 'user', content: 'hello' }] });
  expect(created.status).toBe(202);
  ids.id = created.body.id;
  ids.jobId = created.body.id;
  ids.queueName = 'moa-requests';
});

afterAll(() => api.close());

/** Every registered route, plus each static file of the console (served by a static handler, not a route). */
function everyPath(): { path: string; methods: readonly string[] }[] {
  const routes = registeredRoutes(app).map((route) => ({
    path: concretePath(route.path, ids),
    methods: METHODS,
  }));
  const files = readdirSync(CONSOLE_PUBLIC_DIR).map((file) => ({
    path: `/console/${file}`,
    methods: METHODS,
  }));
  return [...routes, ...files];
}

async function send(method: string, path: string, key?: string): Promise<request.Response> {
  const test = request(app)[method.toLowerCase() as 'get'](path);
  if (key) test.set('authorization', `Bearer ${key}`);
  // Ask as a browser would, too: a page load must not be redirected anywhere useful either.
  return test.set('accept', 'text/html,application/json');
}

describe('the route matrix: every route × method × spelling', () => {
  it('finds the routes by walking the router, bull-board included', () => {
    const paths = registeredRoutes(app).map((route) => route.path);
    expect(paths).toEqual(
      expect.arrayContaining([
        '/v1/jobs',
        '/v1/jobs/:id',
        '/v1/jobs/:id/events',
        '/v1/chat/completions',
        '/v1/responses',
        '/v1/files',
        '/v1/batches/:id/cancel',
        '/console/api/jobs',
        '/console/login',
      ]),
    );
    // bull-board's own API, mounted under /admin/queues.
    expect(paths.filter((path) => path.startsWith('/admin/queues/')).length).toBeGreaterThan(10);
  });

  it('answers nothing 2xx or 3xx without a valid key, except the exact public paths', async () => {
    const leaks: string[] = [];
    let checked = 0;
    for (const { path, methods } of everyPath()) {
      for (const variant of pathVariants(path)) {
        for (const method of methods) {
          if (PUBLIC_PATHS.has(variant.path)) continue;
          const response = await send(method, variant.path);
          checked += 1;
          if (response.status < 400)
            leaks.push(`${method} ${variant.path} (${variant.name}) → ${response.status}`);
        }
      }
    }
    expect(leaks).toEqual([]);
    expect(checked).toBeGreaterThan(1000);
  });

  it('keeps bull-board from a tenant key in every spelling, and serves it to an admin key', async () => {
    const leaks: string[] = [];
    const adminPaths = everyPath().filter(({ path }) => path.startsWith('/admin/queues'));
    expect(adminPaths.length).toBeGreaterThan(10);
    for (const { path, methods } of adminPaths) {
      for (const variant of pathVariants(path)) {
        for (const method of methods) {
          const response = await send(method, variant.path, KEYS.alpha);
          if (response.status < 400)
            leaks.push(`${method} ${variant.path} (${variant.name}) → ${response.status}`);
        }
      }
    }
    expect(leaks).toEqual([]);
    expect((await send('GET', '/admin/queues', KEYS.alpha)).status).toBe(403);
    expect((await send('GET', '/admin/queues', KEYS.admin)).status).toBe(200);
    // The console links to it with a trailing slash.
    expect((await send('GET', '/admin/queues/', KEYS.admin)).status).toBe(200);
    const queuesList = await request(app)
      .get('/admin/queues/api/queues')
      .set('authorization', `Bearer ${KEYS.admin}`);
    expect(queuesList.status).toBe(200);
    expect(JSON.stringify(queuesList.body)).toContain('moa-requests');
  });

  it('matches routes exactly: another spelling of a route is no route, even with a valid key', async () => {
    for (const path of [
      '/V1/jobs',
      '/v1/Jobs',
      '/v1/jobs/',
      '//v1/jobs',
      '/v1/%6Aobs',
      `/v1/jobs/${ids.id}/`,
    ]) {
      const response = await send('GET', path, KEYS.alpha);
      expect(response.status, path).toBe(404);
      expect(response.body.error.code, path).toBe('not_found');
    }
  });

  it.each(['/healthz', '/readyz', '/metrics', '/console/login', '/console/console.css'])(
    'serves public path %s without a key',
    async (path) => {
      expect((await request(app).get(path)).status).toBe(200);
    },
  );
});
