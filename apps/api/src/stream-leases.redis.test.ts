import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createMoaQueues } from '@moa-queue/contract';
import { parseMoaConfig } from '@moa-queue/moa';
import { uniquePrefix, until } from '@moa-queue/test-support';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createApp } from './app.js';
import type { ApiError } from './api-error.js';
import { acquireStreamLease, createStreamLeases, streamLeasesKey } from './stream-leases.js';

const url = inject('redisUrl');
const prefix = uniquePrefix('stream-leases');
const redis = new Redis(url, { maxRetriesPerRequest: null });
const config = parseMoaConfig({ quotas: { maxStreams: 2 } });
const queues = createMoaQueues({ connection: redis, prefix, providers: Object.keys(config.providers) });

afterAll(async () => {
  const keys = await redis.keys(`${prefix}:*`);
  if (keys.length > 0) await redis.del(...keys);
  await queues.close();
  redis.disconnect();
});

describe('stream leases', () => {
  it('admits two streams with a quota of 2, refuses the third with 429 quota_streams, admits again once one ends', async () => {
    const first = await acquireStreamLease({ redis, queues, config }, 'team-a');
    const second = await acquireStreamLease({ redis, queues, config }, 'team-a');
    const refused = (await acquireStreamLease({ redis, queues, config }, 'team-a').catch(
      (error: unknown) => error,
    )) as ApiError;
    expect(refused.status).toBe(429);
    expect(refused.code).toBe('quota_streams');
    expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0);
    // Another tenant has quota of its own.
    const other = await acquireStreamLease({ redis, queues, config }, 'team-b');
    await first.release();
    await first.release(); // idempotent: frees one slot, not two
    const third = await acquireStreamLease({ redis, queues, config }, 'team-a');
    await expect(acquireStreamLease({ redis, queues, config }, 'team-a')).rejects.toMatchObject({
      code: 'quota_streams',
    });
    await Promise.all([second.release(), third.release(), other.release()]);
    expect(await redis.zcard(streamLeasesKey(prefix, 'team-a'))).toBe(0);
  });

  it('counts leases across replicas; a crashed replica’s leases expire, a live one’s are renewed', async () => {
    const crashing = new Redis(url, { maxRetriesPerRequest: null });
    const replicaA = createStreamLeases(crashing, prefix, { ttlMs: 1500, renewMs: 150 });
    const replicaB = createStreamLeases(redis, prefix, { ttlMs: 1500, renewMs: 150 });
    await replicaA.acquire('team-c', 2);
    const kept = await replicaB.acquire('team-c', 2);
    await expect(replicaB.acquire('team-c', 2)).rejects.toMatchObject({ code: 'quota_streams' });
    expect(await replicaB.count('team-c')).toBe(2);
    // Replica A dies without releasing: its renewals stop, its lease runs out.
    crashing.disconnect();
    await until(async () => (await replicaB.count('team-c')) === 1, 10_000);
    // B's lease outlived several lease times because B renews it.
    await new Promise((resolve) => setTimeout(resolve, 3500));
    expect(await replicaB.count('team-c')).toBe(1);
    const again = await replicaB.acquire('team-c', 2);
    await Promise.all([kept.release(), again.release()]);
    expect(replicaB.held()).toBe(0);
  });
});

describe('maxStreams over HTTP', () => {
  // No workers: a job stays queued, so its followers stay open.
  const app = createApp({ queues, redis, config, logger: pino({ level: 'silent' }) });
  let server: Server;
  let baseUrl = '';
  beforeAll(async () => {
    server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  it('a third concurrent follower, a waiting chat completion or response gets 429 quota_streams with Retry-After', async () => {
    const created = await fetch(`${baseUrl}/v1/jobs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ messages: [{ role: 'user', content: 'hello' }] }),
    });
    const { id } = (await created.json()) as { id: string };
    const followers = [new AbortController(), new AbortController()];
    const open = await Promise.all(
      followers.map((controller) => fetch(`${baseUrl}/v1/jobs/${id}/events`, { signal: controller.signal })),
    );
    expect(open.map((response) => response.status)).toEqual([200, 200]);

    const third = await fetch(`${baseUrl}/v1/jobs/${id}/events`);
    expect(third.status).toBe(429);
    expect(Number(third.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(((await third.json()) as { error: { code: string } }).error.code).toBe('quota_streams');

    const jobsBefore = await redis.keys(`${prefix}:moa-requests:job_*`);
    const chat = await fetch(`${baseUrl}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'moa', messages: [{ role: 'user', content: 'hello' }] }),
    });
    expect(chat.status).toBe(429);
    expect(((await chat.json()) as { error: { code: string } }).error.code).toBe('quota_streams');
    const responses = await fetch(`${baseUrl}/v1/responses`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'moa', input: 'hello' }),
    });
    expect(responses.status).toBe(429);
    expect(((await responses.json()) as { error: { code: string } }).error.code).toBe('quota_streams');
    // Refused before their jobs were made.
    expect(await redis.keys(`${prefix}:moa-requests:job_*`)).toEqual(jobsBefore);

    // A follower that goes away frees its slot.
    followers[0]!.abort();
    await until(async () => (await redis.zcard(streamLeasesKey(prefix, 'default'))) === 1, 10_000);
    const controller = new AbortController();
    const fourth = await fetch(`${baseUrl}/v1/jobs/${id}/events`, { signal: controller.signal });
    expect(fourth.status).toBe(200);
    controller.abort();
    followers[1]!.abort();
    await until(async () => (await redis.zcard(streamLeasesKey(prefix, 'default'))) === 0, 10_000);
  });
});
