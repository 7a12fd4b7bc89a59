import request from 'supertest';
import { afterAll, describe, expect, it } from 'vitest';
import { startRedisServer, type RedisServerProcess } from '@moa-queue/test-support';
import { startMoaStack, type MoaStack } from './support/moa-stack.js';

describe('a Redis restart (AOF) in the middle of a run', () => {
  let redis: RedisServerProcess | undefined;
  let restarted: RedisServerProcess | undefined;
  let stack: MoaStack | undefined;
  afterAll(async () => {
    await stack?.stop();
    await restarted?.stop();
    await redis?.stop();
  });

  it('loses no request: API and workers reconnect, /readyz reports the outage, every request completes', async () => {
    // This suite owns its Redis: it kills it.
    redis = await startRedisServer({ appendOnly: true });
    stack = await startMoaStack({
      name: 'redis-restart',
      redisUrl: redis.url,
      workers: 2,
      fake: { defaultLatencyMs: 400 },
    });
    const created = await Promise.all(
      Array.from({ length: 12 }, (_, index) =>
        stack!.submit({ messages: [{ role: 'user', content: `survive ${index}` }] }),
      ),
    );
    await new Promise((resolve) => setTimeout(resolve, 600));

    await redis.kill();
    const during = await request(stack.app).get('/readyz');
    expect(during.status).toBe(503);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    restarted = await startRedisServer({ appendOnly: true, port: redis.port, directory: redis.directory });
    expect((await request(stack.app).get('/readyz')).status).toBe(200);

    const jobs = await Promise.all(created.map((job) => stack!.waitFor(job.id, 90_000)));
    expect(jobs.map((job) => job.status)).toEqual(Array(12).fill('completed'));
    for (const job of jobs) {
      expect(job.layers.map((layer) => layer.calls.length)).toEqual([3, 3, 1]);
      expect(job.output).toBeTruthy();
    }
  });
});
