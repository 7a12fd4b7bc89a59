import { createMoaQueues } from '@moa-queue/contract';
import { builtInConfig } from '@moa-queue/moa';
import { uniquePrefix } from '@moa-queue/test-support';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import request from 'supertest';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { createApp } from './app.js';

const redis = new Redis(inject('redisUrl'), { maxRetriesPerRequest: null });
const config = builtInConfig();
const queues = createMoaQueues({
  connection: redis,
  prefix: uniquePrefix('api-delivery'),
  providers: ['together'],
});
const logger = pino({ level: 'silent' });
const body = { messages: [{ role: 'user', content: 'Idempotent, please.' }] };

afterAll(async () => {
  await queues.close();
  await redis.quit();
});

describe('Idempotency-Key on POST /v1/jobs', () => {
  const app = createApp({
    queues,
    redis,
    config,
    logger,
    apiKeys: ['key-a-0123456789abcdefghij', 'key-b-0123456789abcdefghij'],
  });

  it('the same key and body return the same job; another body is a 409', async () => {
    const first = await request(app)
      .post('/v1/jobs')
      .set('authorization', 'Bearer key-a-0123456789abcdefghij')
      .set('idempotency-key', 'k-1')
      .send(body);
    expect(first.status).toBe(202);
    const second = await request(app)
      .post('/v1/jobs')
      .set('authorization', 'Bearer key-a-0123456789abcdefghij')
      .set('idempotency-key', 'k-1')
      .send(body);
    expect(second.status).toBe(202);
    expect(second.body.id).toBe(first.body.id);
    expect(second.headers['idempotent-replayed']).toBe('true');
    expect(await queues.requests.getJobCountByTypes('waiting')).toBe(1);

    const conflict = await request(app)
      .post('/v1/jobs')
      .set('authorization', 'Bearer key-a-0123456789abcdefghij')
      .set('idempotency-key', 'k-1')
      .send({ ...body, metadata: { other: 'body' } });
    expect(conflict.status).toBe(409);
    expect(conflict.body.error).toMatchObject({ code: 'idempotency_key_reused', param: 'Idempotency-Key' });
  });

  it('keys are per caller, and concurrent retries create one job', async () => {
    const other = await request(app)
      .post('/v1/jobs')
      .set('authorization', 'Bearer key-b-0123456789abcdefghij')
      .set('idempotency-key', 'k-1')
      .send(body);
    expect(other.status).toBe(202);
    const responses = await Promise.all(
      Array.from({ length: 5 }, () =>
        request(app)
          .post('/v1/jobs')
          .set('authorization', 'Bearer key-b-0123456789abcdefghij')
          .set('idempotency-key', 'k-2')
          .send(body),
      ),
    );
    expect(new Set(responses.map((response) => response.body.id)).size).toBe(1);
    expect(responses.every((response) => response.status === 202)).toBe(true);
  });

  it('an over-long key is a 400 naming the header', async () => {
    const response = await request(app)
      .post('/v1/jobs')
      .set('authorization', 'Bearer key-a-0123456789abcdefghij')
      .set('idempotency-key', 'x'.repeat(300))
      .send(body);
    expect(response.status).toBe(400);
    expect(response.body.error.param).toBe('Idempotency-Key');
  });
});

describe('per-tenant rate limit', () => {
  it('answers 429 with Retry-After past the limit, per tenant, with x-ratelimit-* headers, and never limits probes', async () => {
    const app = createApp({
      queues,
      redis,
      config,
      logger,
      apiKeys: ['key-a-0123456789abcdefghij', 'key-b-0123456789abcdefghij'],
      rateLimitRpm: 3,
    });
    const responses: request.Response[] = [];
    // A bucket of 3, refilled at one request per 20 s: the 4th of a quick run is refused.
    for (let index = 0; index < 6; index += 1) {
      responses.push(
        await request(app).get('/v1/models').set('authorization', 'Bearer key-a-0123456789abcdefghij'),
      );
    }
    const statuses = responses.map((response) => response.status);
    expect(statuses.slice(0, 3)).toEqual([200, 200, 200]);
    expect(
      responses.slice(0, 3).map((response) => response.headers['x-ratelimit-remaining-requests']),
    ).toEqual(['2', '1', '0']);
    expect(responses[0]!.headers['x-ratelimit-limit-requests']).toBe('3');
    expect(responses[0]!.headers['x-ratelimit-reset-requests']).toMatch(/^(\d+ms|\d+s|\d+m\d+s)$/);
    const limited = responses.find((response) => response.status === 429);
    expect(limited?.body.error).toMatchObject({ type: 'rate_limit_error', code: 'rate_limit_exceeded' });
    expect(limited?.headers['x-ratelimit-remaining-requests']).toBe('0');
    // Until the next token, not until a minute ends.
    const retryAfter = Number(limited?.headers['retry-after']);
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(20);
    expect(
      (await request(app).get('/v1/models').set('authorization', 'Bearer key-b-0123456789abcdefghij')).status,
    ).toBe(200);
    for (let index = 0; index < 5; index += 1) expect((await request(app).get('/healthz')).status).toBe(200);
  });
});

describe('console login throttling', () => {
  it('answers 429 after 10 login attempts a minute from one address', async () => {
    const app = createApp({ queues, redis, config, logger, apiKeys: ['right-key-0123456789abcdefghij'] });
    const statuses: number[] = [];
    // 21 attempts span at most two minute windows, so one window sees more than 10.
    for (let index = 0; index < 21; index += 1) {
      const response = await request(app)
        .post('/console/login')
        .type('form')
        .send({ key: `guess-${index}` });
      statuses.push(response.status);
    }
    expect(statuses).toContain(429);
    expect(statuses.filter((status) => status !== 429).length).toBeGreaterThanOrEqual(10);
  });
});
