import type { MoaQueues } from '@moa-queue/contract';
import { describe, expect, it } from 'vitest';
import { createApiMetrics } from './metrics.js';

/** Queues whose counts come from `read`: the scrape logic alone (the real thing is in redis-faults.redis.test.ts). */
function queuesReading(read: () => Promise<Record<string, number>>): MoaQueues {
  return { all: () => [{ name: 'moa-requests', getJobCounts: read }] } as unknown as MoaQueues;
}

function health(healthy = true) {
  const noted: Error[] = [];
  return { noted, healthy, noteError: (error: Error) => void noted.push(error) };
}

const sample = (text: string, name: string) =>
  new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text)?.[1];

describe('createApiMetrics: a scrape and Redis', () => {
  it('Redis answers: the queue counts and moa_redis_up 1, from one read per scrape', async () => {
    let reads = 0;
    const metrics = createApiMetrics(
      queuesReading(async () => {
        reads += 1;
        return { waiting: 4 };
      }),
      { health: health() },
    );
    const text = await metrics.registry.metrics();
    expect(text).toContain('bullmq_job_count{queue="moa-requests",state="waiting"} 4');
    expect(sample(text, 'moa_redis_up')).toBe('1');
    expect(reads).toBe(1);
  });

  it('Redis unreachable: the scrape answers without queue counts, moa_redis_up 0, and the health hears of it', async () => {
    const watch = health();
    const metrics = createApiMetrics(
      queuesReading(async () => {
        throw new Error("Stream isn't writeable and enableOfflineQueue options is false");
      }),
      { health: watch },
    );
    const text = await metrics.registry.metrics();
    expect(text).not.toMatch(/^bullmq_job_count\{/m);
    expect(sample(text, 'moa_redis_up')).toBe('0');
    expect(sample(text, 'process_cpu_user_seconds_total')).toBeDefined();
    expect(watch.noted.map((error) => error.message)).toEqual([
      "Stream isn't writeable and enableOfflineQueue options is false",
    ]);
  });

  it('Redis never answers: the read gives up after readTimeoutMs', async () => {
    const watch = health();
    const metrics = createApiMetrics(
      queuesReading(() => new Promise(() => undefined)),
      { health: watch, readTimeoutMs: 50 },
    );
    const text = await metrics.registry.metrics();
    expect(sample(text, 'moa_redis_up')).toBe('0');
    expect(watch.noted.map((error) => error.message)).toEqual(['Command timed out']);
  });

  it('Redis answers reads but the health watch has seen an outage (full): counts, and moa_redis_up 0', async () => {
    const metrics = createApiMetrics(
      queuesReading(async () => ({ waiting: 1 })),
      { health: health(false) },
    );
    const text = await metrics.registry.metrics();
    expect(text).toMatch(/^bullmq_job_count\{/m);
    expect(sample(text, 'moa_redis_up')).toBe('0');
  });

  it('any other error is a bug: the scrape fails, nothing is put down to Redis', async () => {
    const watch = health();
    const metrics = createApiMetrics(
      queuesReading(async () => {
        throw new TypeError('a bug');
      }),
      { health: watch },
    );
    await expect(metrics.registry.metrics()).rejects.toThrow('a bug');
    expect(watch.noted).toEqual([]);
  });
});
