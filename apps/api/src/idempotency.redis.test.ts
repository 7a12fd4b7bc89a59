import { createHash } from 'node:crypto';
import { createMoaQueues, type MoaQueues } from '@moa-queue/contract';
import { builtInConfig } from '@moa-queue/moa';
import { startRedisServer, uniquePrefix, type RedisServerProcess } from '@moa-queue/test-support';
import type { Express } from 'express';
import { Redis, ReplyError } from 'ioredis';
import { pino } from 'pino';
import request from 'supertest';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { createApp } from './app.js';
import { IDEMPOTENCY_STALE_CLAIM_MS, IDEMPOTENCY_TTL_SECONDS } from './idempotency.js';
import { createApiRedis } from './redis-connection.js';

const OOM = "OOM command not allowed when used memory > 'maxmemory'.";
const config = builtInConfig();
const logger = pino({ level: 'silent' });

/** An in-process API on `url` with the API's own connection settings. */
function stack(url: string, name: string): { redis: Redis; queues: MoaQueues; app: Express } {
  const redis = createApiRedis(url);
  redis.on('error', () => undefined);
  const queues = createMoaQueues({
    connection: redis,
    prefix: uniquePrefix(name),
    providers: Object.keys(config.providers),
    onError: () => undefined,
  });
  return { redis, queues, app: createApp({ queues, redis, config, logger }) };
}

function post(app: Express, key: string, content: string) {
  return request(app)
    .post('/v1/jobs')
    .set('idempotency-key', key)
    .send({ messages: [{ role: 'user', content }] });
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe('an Idempotency-Key whose request failed to be created (test c)', () => {
  const { redis, queues, app } = stack(inject('redisUrl'), 'idem-release');
  // The API's connection has no offline queue: wait until it is connected.
  beforeAll(() => queues.requests.waitUntilReady());
  afterAll(async () => {
    await queues.close();
    await redis.quit();
  });

  it('is given back: the retry with the same key and body creates the job (202)', async () => {
    // The create fails as Redis fails it: the job script refused for memory.
    const add = vi.spyOn(queues.requests, 'add').mockRejectedValueOnce(new ReplyError(OOM));
    const failed = await post(app, 'retry-me', 'hello');
    expect(failed.status).toBe(503);
    expect(failed.headers['retry-after']).toBe('5');
    expect(failed.headers['x-should-retry']).toBe('true');
    expect(failed.body.error).toMatchObject({ code: 'redis_full', type: 'server_error' });
    expect(add).toHaveBeenCalledTimes(1);

    const retried = await post(app, 'retry-me', 'hello');
    expect(retried.status).toBe(202);
    expect(retried.headers['idempotent-replayed']).toBeUndefined();
    const job = await queues.requests.getJob(retried.body.id);
    expect(job?.id).toBe(retried.body.id);

    // From now on the key names that job.
    const replayed = await post(app, 'retry-me', 'hello');
    expect(replayed.status).toBe(202);
    expect(replayed.body.id).toBe(retried.body.id);
    expect(replayed.headers['idempotent-replayed']).toBe('true');
  });

  it('a claim left behind by a request that could not give it back is taken over once stale', async () => {
    const body = { messages: [{ role: 'user', content: 'stale' }] };
    const claimKey = `${queues.prefix}:moa-idempotency:${createHash('sha256').update('default\nstale-claim').digest('hex')}`;
    const bodyHash = createHash('sha256').update(JSON.stringify(body)).digest('hex');
    // As if claimed STALE + 5 s ago by a request whose job never came.
    await redis.set(
      claimKey,
      JSON.stringify({ requestId: 'job_never_created', bodyHash }),
      'EX',
      IDEMPOTENCY_TTL_SECONDS - Math.ceil(IDEMPOTENCY_STALE_CLAIM_MS / 1000) - 5,
    );
    const retried = await request(app).post('/v1/jobs').set('idempotency-key', 'stale-claim').send(body);
    expect(retried.status).toBe(202);
    expect(retried.body.id).not.toBe('job_never_created');
    expect(JSON.parse((await redis.get(claimKey)) ?? '{}')).toMatchObject({
      requestId: retried.body.id,
      created: true,
    });
  });

  it('a fresh claim whose job is not there yet is not taken over: 409 idempotency_key_in_use, retryable', async () => {
    const body = { messages: [{ role: 'user', content: 'fresh' }] };
    const claimKey = `${queues.prefix}:moa-idempotency:${createHash('sha256').update('default\nfresh-claim').digest('hex')}`;
    const bodyHash = createHash('sha256').update(JSON.stringify(body)).digest('hex');
    await redis.set(
      claimKey,
      JSON.stringify({ requestId: 'job_being_created', bodyHash }),
      'EX',
      IDEMPOTENCY_TTL_SECONDS,
    );
    const response = await request(app).post('/v1/jobs').set('idempotency-key', 'fresh-claim').send(body);
    expect(response.status).toBe(409);
    expect(response.body.error.code).toBe('idempotency_key_in_use');
    expect(response.headers['x-should-retry']).toBe('true');
  });
});

describe('an Idempotency-Key whose create Redis really refused (own redis-server, maxmemory squeezed)', () => {
  let server: RedisServerProcess;
  let api: ReturnType<typeof stack>;
  let admin: Redis;
  beforeAll(async () => {
    server = await startRedisServer();
    api = stack(server.url, 'idem-oom');
    admin = new Redis(server.url);
    await api.queues.requests.waitUntilReady();
  });
  afterAll(async () => {
    await api?.queues.close();
    await api?.redis.quit();
    await admin?.quit();
    await server?.stop();
  });

  it('503 redis_full while full; after it is lifted the retry with the same key creates the job', async () => {
    const add = api.queues.requests.add.bind(api.queues.requests);
    // Redis fills up between the claim and the job: the real job script meets the real OOM.
    vi.spyOn(api.queues.requests, 'add').mockImplementationOnce(async (...args) => {
      await admin.config('SET', 'maxmemory', '1');
      return add(...args);
    });
    const failed = await post(api.app, 'squeezed', 'fill me');
    expect(failed.status).toBe(503);
    expect(failed.body.error.code).toBe('redis_full');
    expect(await api.queues.requests.getJobCounts('waiting')).toEqual({ waiting: 0 });

    // Still full: the retry cannot claim either, and says so.
    const stillFull = await post(api.app, 'squeezed', 'fill me');
    expect(stillFull.status).toBe(503);
    expect(stillFull.body.error.code).toBe('redis_full');

    await admin.config('SET', 'maxmemory', '0');
    const retried = await post(api.app, 'squeezed', 'fill me');
    expect(retried.status).toBe(202);
    expect(await api.queues.requests.getJobCounts('waiting')).toEqual({ waiting: 1 });
  });
});
