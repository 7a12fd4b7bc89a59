import { createMoaQueues } from '@moa-queue/contract';
import { builtInConfig } from '@moa-queue/moa';
import { uniquePrefix } from '@moa-queue/test-support';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createApp } from './app.js';

const redis = new Redis(inject('redisUrl'), { maxRetriesPerRequest: null });
const config = builtInConfig();
const queues = createMoaQueues({
  connection: redis,
  prefix: uniquePrefix('api-auth'),
  providers: Object.keys(config.providers),
});
const K1 = 'k1-0123456789abcdefghij';
const K2 = 'k2-0123456789abcdefghij';
// Trusting the proxy header lets each wrong-key test come from its own address, clear of the failure throttle.
const app = createApp({
  queues,
  redis,
  config,
  logger: pino({ level: 'silent' }),
  apiKeys: [K1, `team-two:${K2}`],
  trustProxy: true,
});
let nextAddress = 1;
const freshAddress = () => `192.0.2.${nextAddress++}`;

afterAll(async () => {
  await queues.close();
  await redis.quit();
});

const messages = [{ role: 'user', content: 'hello' }];
let jobId = '';

beforeAll(async () => {
  const created = await request(app).post('/v1/jobs').set('authorization', `Bearer ${K1}`).send({ messages });
  expect(created.status).toBe(202);
  jobId = created.body.id;
});

/** Every API route, as a request builder that may add the key (only sent without a valid one). */
const routes: [string, (key?: string) => request.Test][] = [
  ['POST /v1/jobs', (key) => withKey(request(app).post('/v1/jobs'), key).send({ messages })],
  ['GET /v1/jobs/{id}', (key) => withKey(request(app).get(`/v1/jobs/${jobId}`), key)],
  ['DELETE /v1/jobs/{id}', (key) => withKey(request(app).delete(`/v1/jobs/${jobId}`), key)],
  ['GET /v1/models', (key) => withKey(request(app).get('/v1/models'), key)],
  ['GET /v1/models/{id}', (key) => withKey(request(app).get('/v1/models/moa'), key)],
  ['GET /v1/jobs/{id}/events', (key) => withKey(request(app).get(`/v1/jobs/${jobId}/events`), key)],
  [
    'POST /v1/chat/completions',
    (key) => withKey(request(app).post('/v1/chat/completions'), key).send({ model: 'moa', messages }),
  ],
  [
    'POST /v1/responses',
    (key) => withKey(request(app).post('/v1/responses'), key).send({ model: 'moa', input: 'hi' }),
  ],
  ['POST /v1/files', (key) => withKey(request(app).post('/v1/files'), key)],
  ['GET /v1/files/{id}', (key) => withKey(request(app).get('/v1/files/file-x'), key)],
  ['GET /v1/files/{id}/content', (key) => withKey(request(app).get('/v1/files/file-x/content'), key)],
  ['POST /v1/batches', (key) => withKey(request(app).post('/v1/batches'), key).send({})],
  ['GET /v1/batches', (key) => withKey(request(app).get('/v1/batches'), key)],
  ['GET /v1/batches/{id}', (key) => withKey(request(app).get('/v1/batches/batch_x'), key)],
  ['POST /v1/batches/{id}/cancel', (key) => withKey(request(app).post('/v1/batches/batch_x/cancel'), key)],
];

function withKey(test: request.Test, key: string | undefined): request.Test {
  return key === undefined ? test : test.set('authorization', `Bearer ${key}`);
}

function expectError(response: request.Response, status: number, code: string): void {
  expect(response.status).toBe(status);
  expect(Object.keys(response.body)).toEqual(['error']);
  expect(Object.keys(response.body.error).sort()).toEqual(['code', 'message', 'param', 'type']);
  expect(response.body.error.code).toBe(code);
}

describe('API keys', () => {
  it.each(routes)('%s without a key is a 401 missing_api_key', async (_name, call) => {
    expectError(await call(), 401, 'missing_api_key');
  });

  it.each(routes)('%s with a wrong key is a 401 invalid_api_key', async (_name, call) => {
    expectError(
      await call('k3-0123456789abcdefghij').set('x-forwarded-for', freshAddress()),
      401,
      'invalid_api_key',
    );
  });

  it('refuses a prefix, an extension and a different case of a valid key', async () => {
    for (const key of [K1.slice(0, -1), `${K1}${K1}`, K1.toUpperCase(), `${K1} ${K2}`]) {
      expectError(
        await request(app)
          .get('/v1/models')
          .set('authorization', `Bearer ${key}`)
          .set('x-forwarded-for', freshAddress()),
        401,
        'invalid_api_key',
      );
    }
  });

  it('refuses a key sent without the Bearer scheme', async () => {
    expectError(await request(app).get('/v1/models').set('authorization', K1), 401, 'missing_api_key');
    expectError(
      await request(app).get('/v1/models').set('authorization', 'Basic azE6'),
      401,
      'missing_api_key',
    );
  });

  it.each([K1, K2])('accepts key %s on every route', async (key) => {
    const created = await request(app)
      .post('/v1/jobs')
      .set('authorization', `Bearer ${key}`)
      .send({ messages });
    expect(created.status).toBe(202);
    const id = created.body.id as string;
    expect((await request(app).get(`/v1/jobs/${id}`).set('authorization', `Bearer ${key}`)).status).toBe(200);
    expect((await request(app).delete(`/v1/jobs/${id}`).set('authorization', `Bearer ${key}`)).status).toBe(
      200,
    );
    expect((await request(app).get('/v1/models').set('authorization', `Bearer ${key}`)).status).toBe(200);
    expect((await request(app).get('/v1/models/moa').set('authorization', `Bearer ${key}`)).status).toBe(200);
  });

  it('checks the key before the body, so an anonymous caller learns nothing about validation', async () => {
    expectError(await request(app).post('/v1/jobs').send({ nonsense: true }), 401, 'missing_api_key');
    expectError(
      await request(app).post('/v1/jobs').set('content-type', 'text/plain').send('x'),
      401,
      'missing_api_key',
    );
  });

  it('answers unknown routes with 401 too, not revealing which routes exist', async () => {
    expectError(await request(app).get('/v1/secret-admin'), 401, 'missing_api_key');
  });

  it.each(['/healthz', '/readyz', '/metrics'])('%s needs no key', async (path) => {
    const response = await request(app).get(path);
    expect(response.status).toBe(200);
  });
});
