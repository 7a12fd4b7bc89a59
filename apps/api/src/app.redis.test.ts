import { createMoaQueues } from '@moa-queue/contract';
import { builtInConfig, PRESET_CREATED_DEFAULT } from '@moa-queue/moa';
import { uniquePrefix } from '@moa-queue/test-support';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import request from 'supertest';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { createApp } from './app.js';

const WEBHOOK_SECRET = 'whsec_c2VjcmV0LXNpZ25pbmcta2V5LWZvci10ZXN0cw==';
const JOB_KEYS = [
  'completed_at',
  'cost_usd',
  'created_at',
  'error',
  'id',
  'layers',
  'metadata',
  'object',
  'output',
  'preset',
  'status',
  'usage',
  'webhook',
];

const redis = new Redis(inject('redisUrl'), { maxRetriesPerRequest: null });
const config = builtInConfig();
const queues = createMoaQueues({
  connection: redis,
  prefix: uniquePrefix('api-app'),
  providers: Object.keys(config.providers),
});
const app = createApp({
  queues,
  redis,
  config,
  logger: pino({ level: 'silent' }),
  webhookSecret: WEBHOOK_SECRET,
});

afterAll(async () => {
  await queues.close();
  await redis.quit();
});

const messages = [{ role: 'user', content: 'What is a mixture of agents?' }];

/** Asserts that `body` is exactly an OpenAI error object. */
function expectErrorObject(body: unknown): {
  message: string;
  type: string;
  param: string | null;
  code: string | null;
} {
  expect(Object.keys(body as object)).toEqual(['error']);
  const error = (body as { error: Record<string, unknown> }).error;
  expect(Object.keys(error).sort()).toEqual(['code', 'message', 'param', 'type']);
  expect(typeof error.message).toBe('string');
  expect(typeof error.type).toBe('string');
  return error as { message: string; type: string; param: string | null; code: string | null };
}

describe('POST /v1/jobs', () => {
  it('answers 202 with a Location and the job object of DESIGN §4', async () => {
    const before = Math.floor(Date.now() / 1000);
    const response = await request(app).post('/v1/jobs').send({ messages });
    const after = Math.floor(Date.now() / 1000);

    expect(response.status).toBe(202);
    expect(response.headers['content-type']).toMatch(/^application\/json/);
    const job = response.body;
    expect(Object.keys(job).sort()).toEqual(JOB_KEYS);
    expect(job.id).toMatch(/^job_[A-Za-z0-9]+$/);
    expect(response.headers.location).toBe(`/v1/jobs/${job.id}`);
    expect(job).toMatchObject({
      object: 'moa.job',
      status: 'queued',
      preset: 'moa',
      completed_at: null,
      output: null,
      layers: [],
      usage: { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 },
      metadata: {},
      error: null,
      webhook: null,
    });
    expect(Object.keys(job.usage).sort()).toEqual(['completion_tokens', 'prompt_tokens', 'total_tokens']);
    expect(Number.isInteger(job.created_at)).toBe(true);
    expect(job.created_at).toBeGreaterThanOrEqual(before);
    expect(job.created_at).toBeLessThanOrEqual(after);
    expect(job.cost_usd === null || typeof job.cost_usd === 'number').toBe(true);
  });

  it('stores the request in the queue, with metadata and webhook, and no secret', async () => {
    const response = await request(app)
      .post('/v1/jobs')
      .send({
        messages: [
          { role: 'system', content: 'Be brief.' },
          {
            role: 'user',
            content: [
              { type: 'text', text: 'Hello, ' },
              { type: 'text', text: 'world' },
            ],
          },
        ],
        metadata: { customer: 'c-42' },
        webhook: { url: 'https://hooks.example.com/moa' },
      });
    expect(response.status).toBe(202);
    expect(response.body.metadata).toEqual({ customer: 'c-42' });
    expect(response.body.webhook).toEqual({ url: 'https://hooks.example.com/moa', deliveries: [] });

    const stored = await queues.requests.getJob(response.body.id);
    expect(stored?.data).toMatchObject({
      requestId: response.body.id,
      preset: { name: 'moa' },
      messages: [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: 'Hello, world' },
      ],
      metadata: { customer: 'c-42' },
      webhook: { url: 'https://hooks.example.com/moa' },
    });
    const serialized = JSON.stringify(stored?.data);
    expect(serialized).not.toContain(WEBHOOK_SECRET);
    expect(serialized).not.toContain(WEBHOOK_SECRET.slice('whsec_'.length));
    expect(serialized).not.toMatch(/secret|api_?key|authorization/i);
  });

  it('runs the chosen preset', async () => {
    const response = await request(app).post('/v1/jobs').send({ preset: 'moa-lite', messages });
    expect(response.status).toBe(202);
    expect(response.body.preset).toBe('moa-lite');
    const stored = await queues.requests.getJob(response.body.id);
    expect(stored?.data.preset.name).toBe('moa-lite');
  });

  it('refuses an unknown preset with a 400 naming preset', async () => {
    const response = await request(app).post('/v1/jobs').send({ preset: 'no-such-preset', messages });
    expect(response.status).toBe(400);
    const error = expectErrorObject(response.body);
    expect(error).toMatchObject({ type: 'invalid_request_error', param: 'preset' });
  });
});

describe('GET /v1/jobs/{id}', () => {
  it('reads a created job back', async () => {
    const created = await request(app).post('/v1/jobs').send({ preset: 'self-moa', messages });
    const response = await request(app).get(`/v1/jobs/${created.body.id}`);
    expect(response.status).toBe(200);
    expect(Object.keys(response.body).sort()).toEqual(JOB_KEYS);
    expect(response.body).toMatchObject({
      id: created.body.id,
      object: 'moa.job',
      status: 'queued',
      preset: 'self-moa',
    });
    expect(response.body.created_at).toBe(created.body.created_at);
  });

  it('answers 404 with an error object for an unknown id', async () => {
    const response = await request(app).get('/v1/jobs/job_doesNotExist0123456789');
    expect(response.status).toBe(404);
    expect(expectErrorObject(response.body).type).toBe('invalid_request_error');
  });

  it('answers 404 for a malformed id', async () => {
    const response = await request(app).get('/v1/jobs/not-a-job-id');
    expect(response.status).toBe(404);
    expectErrorObject(response.body);
  });
});

describe('DELETE /v1/jobs/{id}', () => {
  it('cancels a queued job', async () => {
    const created = await request(app).post('/v1/jobs').send({ messages });
    const cancelled = await request(app).delete(`/v1/jobs/${created.body.id}`);
    expect(cancelled.status).toBe(200);
    expect(cancelled.body).toMatchObject({ id: created.body.id, object: 'moa.job', status: 'cancelled' });
    expect(Object.keys(cancelled.body).sort()).toEqual(JOB_KEYS);

    const read = await request(app).get(`/v1/jobs/${created.body.id}`);
    expect(read.status).toBe(200);
    expect(read.body.status).toBe('cancelled');
  });

  it('answers 404 for an unknown id', async () => {
    const response = await request(app).delete('/v1/jobs/job_doesNotExist0123456789');
    expect(response.status).toBe(404);
    expectErrorObject(response.body);
  });
});

describe('models', () => {
  it('lists the built-in presets as OpenAI models', async () => {
    const response = await request(app).get('/v1/models');
    expect(response.status).toBe(200);
    expect(response.body.object).toBe('list');
    const ids = (response.body.data as { id: string }[]).map((model) => model.id);
    expect(ids).toEqual(expect.arrayContaining(['moa', 'moa-lite', 'self-moa']));
    for (const model of response.body.data) {
      expect(model).toMatchObject({ object: 'model', owned_by: expect.any(String) });
      expect(Number.isInteger(model.created)).toBe(true);
    }
  });

  it("reports each preset's created from the config, the same in every app instance", async () => {
    const first = await request(app).get('/v1/models/moa');
    // Another instance made later, as after a restart, answers the same date.
    const restarted = createApp({
      queues,
      redis,
      config: builtInConfig(),
      logger: pino({ level: 'silent' }),
      webhookSecret: WEBHOOK_SECRET,
    });
    const second = await request(restarted).get('/v1/models/moa');
    expect(first.body.created).toBe(PRESET_CREATED_DEFAULT);
    expect(second.body.created).toBe(first.body.created);
  });

  it('reads one model', async () => {
    const response = await request(app).get('/v1/models/moa');
    expect(response.status).toBe(200);
    expect(response.body).toMatchObject({ id: 'moa', object: 'model' });
  });

  it("answers an unknown model with OpenAI's 404 model_not_found", async () => {
    const response = await request(app).get('/v1/models/gpt-nonexistent');
    expect(response.status).toBe(404);
    expect(expectErrorObject(response.body).code).toBe('model_not_found');
  });
});

describe('probes', () => {
  it('answers /healthz', async () => {
    const response = await request(app).get('/healthz');
    expect(response.status).toBe(200);
    expect(response.body).toEqual({ status: 'ok' });
  });

  it('answers /readyz when Redis is reachable', async () => {
    const response = await request(app).get('/readyz');
    expect(response.status).toBe(200);
    expect(response.body.status).toBe('ready');
  });
});

describe('routing errors', () => {
  it('answers an unknown route with a 404 error object', async () => {
    const response = await request(app).get('/v1/nothing-here');
    expect(response.status).toBe(404);
    expect(response.headers['content-type']).toMatch(/^application\/json/);
    expectErrorObject(response.body);
  });

  it.each([
    ['PUT', '/v1/jobs', 'POST'],
    ['GET', '/v1/jobs', 'POST'],
    ['POST', '/v1/jobs/job_abc', 'GET, DELETE'],
    ['PATCH', '/v1/jobs/job_abc', 'GET, DELETE'],
    ['POST', '/v1/models', 'GET'],
    ['DELETE', '/v1/models/moa', 'GET'],
  ] as const)('answers %s %s with 405 and an allow header', async (method, path, allow) => {
    const call = request(app)[method.toLowerCase() as 'put' | 'get' | 'post' | 'patch' | 'delete'](path);
    const response = method === 'GET' || method === 'DELETE' ? await call : await call.send({ messages });
    expect(response.status).toBe(405);
    expect(response.headers.allow).toBe(allow);
    expect(expectErrorObject(response.body).code).toBe('method_not_allowed');
  });
});

describe('x-request-id', () => {
  it('echoes a sane id the caller sends', async () => {
    const response = await request(app).get('/healthz').set('x-request-id', 'caller-id.123:abc');
    expect(response.headers['x-request-id']).toBe('caller-id.123:abc');
  });

  it('generates one when none is sent', async () => {
    const first = await request(app).get('/healthz');
    const second = await request(app).get('/v1/models');
    expect(first.headers['x-request-id']).toMatch(/^req_[0-9a-f]{32}$/);
    expect(second.headers['x-request-id']).toMatch(/^req_[0-9a-f]{32}$/);
    expect(first.headers['x-request-id']).not.toBe(second.headers['x-request-id']);
  });

  it('replaces an id that is not sane, and sets it on errors too', async () => {
    const response = await request(app).get('/v1/nothing-here').set('x-request-id', 'x'.repeat(200));
    expect(response.status).toBe(404);
    expect(response.headers['x-request-id']).toMatch(/^req_[0-9a-f]{32}$/);
  });
});
