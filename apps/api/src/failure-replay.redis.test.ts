import { uniquePrefix } from '@moa-queue/test-support';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { ApiError } from './api-error.js';
import { createFailureReplay, REPLAYED_FROM_HEADER } from './failure-replay.js';

const redis = new Redis(inject('redisUrl'), { maxRetriesPerRequest: null });
const prefix = uniquePrefix('failure-replay');
afterAll(async () => {
  await redis.quit();
});

const ROUTE = '/v1/chat/completions';
const body = { model: 'moa', messages: [{ role: 'user', content: 'Hello?' }] };
const deterministic = () =>
  new ApiError(502, 'every proposer failed', 'server_error', null, 'too_few_proposers', {
    'x-should-retry': 'false',
  });

describe('failure replay', () => {
  it('answers the same caller, route and body with the remembered failure', async () => {
    const replay = createFailureReplay({ redis, prefix });
    await replay.remember('alpha', ROUTE, body, 'job_first', deterministic());
    const replayed = await replay.find('alpha', ROUTE, structuredClone(body));
    expect(replayed).toBeInstanceOf(ApiError);
    expect(replayed?.toBody()).toEqual(deterministic().toBody());
    expect(replayed?.status).toBe(502);
    expect(replayed?.headers).toMatchObject({
      'x-should-retry': 'false',
      'x-moa-job-id': 'job_first',
      [REPLAYED_FROM_HEADER]: 'job_first',
    });
  });

  it('never answers another tenant, another route or another body', async () => {
    const replay = createFailureReplay({ redis, prefix });
    await replay.remember('alpha', ROUTE, body, 'job_first', deterministic());
    expect(await replay.find('beta', ROUTE, body)).toBeUndefined();
    expect(await replay.find('alpha', '/v1/responses', body)).toBeUndefined();
    expect(await replay.find('alpha', ROUTE, { ...body, temperature: 0.1 })).toBeUndefined();
  });

  it('remembers only failures that say retrying cannot help', async () => {
    const replay = createFailureReplay({ redis, prefix });
    const transient = new ApiError(502, 'the provider failed', 'server_error', null, 'too_few_proposers', {
      'x-should-retry': 'true',
    });
    const other = { ...body, messages: [{ role: 'user', content: 'Transient?' }] };
    await replay.remember('alpha', ROUTE, other, 'job_transient', transient);
    expect(await replay.find('alpha', ROUTE, other)).toBeUndefined();
    // No header at all (a cancelled run's 409): not remembered either.
    await replay.remember('alpha', ROUTE, other, 'job_cancelled', new ApiError(409, 'cancelled'));
    expect(await replay.find('alpha', ROUTE, other)).toBeUndefined();
  });

  it('forgets after its TTL, and does nothing with a TTL of 0', async () => {
    // A prefix of its own: the one key under it is this record's.
    const shortLived = createFailureReplay({ redis, prefix: `${prefix}-short`, ttlSeconds: 1 });
    await shortLived.remember('alpha', ROUTE, body, 'job_short', deterministic());
    const [key] = await redis.keys(`${prefix}-short:moa-failure-replay:*`);
    if (key === undefined) throw new Error('the short-lived record was not written');
    expect(await redis.pttl(key)).toBeGreaterThan(0);
    expect(await redis.pttl(key)).toBeLessThanOrEqual(1000);

    const off = createFailureReplay({ redis, prefix: `${prefix}-off`, ttlSeconds: 0 });
    await off.remember('alpha', ROUTE, body, 'job_off', deterministic());
    expect(await redis.keys(`${prefix}-off:*`)).toEqual([]);
    expect(await off.find('alpha', ROUTE, body)).toBeUndefined();
  });

  it('ignores a record in Redis that does not parse', async () => {
    const replay = createFailureReplay({ redis, prefix: `${prefix}-bad` });
    await replay.remember('alpha', ROUTE, body, 'job_bad', deterministic());
    const [key] = await redis.keys(`${prefix}-bad:moa-failure-replay:*`);
    await redis.set(key ?? '', JSON.stringify({ requestId: 'job_bad', status: 200 }));
    expect(await replay.find('alpha', ROUTE, body)).toBeUndefined();
    await redis.set(key ?? '', 'not json');
    expect(await replay.find('alpha', ROUTE, body)).toBeUndefined();
  });
});
