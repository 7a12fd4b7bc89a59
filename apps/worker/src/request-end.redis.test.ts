import {
  batchItemRequestId,
  batchKey,
  batchErrorKey,
  createMoaQueues,
  eventsKey,
  type MoaQueues,
  type RequestJobData,
} from '@moa-queue/contract';
import { createFakeProvider, type FakeProvider } from '@moa-queue/fake-provider';
import { parseMoaConfig } from '@moa-queue/moa';
import { pollUntil, uniquePrefix } from '@moa-queue/test-support';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startMoaWorker, type MoaWorker } from './moa-worker.js';

/** BullMQ's reason for a job that stalled more often than `maxStalledCount` allows. */
const STALLED_OUT = 'job stalled more than allowable limit';

describe('a request that BullMQ fails without running it still ends', () => {
  let fake: FakeProvider;
  let worker: MoaWorker;
  let redis: Redis;
  let queues: MoaQueues;
  const prefix = uniquePrefix('request-end');
  const config = () =>
    parseMoaConfig({
      providers: { fake: { baseURL: fake.url, maxAttempts: 3 } },
      presets: {
        duo: {
          layers: [[{ model: 'fake/alpha' }, { model: 'fake/beta' }]],
          aggregator: { model: 'fake/aggregator' },
        },
      },
      defaultPreset: 'duo',
      webhooks: { allowHosts: ['127.0.0.1'] },
    });

  beforeAll(async () => {
    fake = await createFakeProvider({ defaultLatencyMs: 5 });
    worker = await startMoaWorker({
      config: {
        redisUrl: inject('redisUrl'),
        metricsPort: 0,
        metricsHost: '127.0.0.1',
        queuePrefix: prefix,
        concurrency: 4,
        shutdownGraceMs: 5000,
        lockDurationMs: 30_000,
        stalledIntervalMs: 15_000,
        maxStalledCount: 1,
        logLevel: 'silent',
        webhookSecret: undefined,
        moa: config(),
      },
      logger: pino({ level: 'silent' }),
      serveMetrics: false,
    });
    redis = new Redis(inject('redisUrl'), { maxRetriesPerRequest: null });
    queues = createMoaQueues({ connection: redis, prefix, providers: ['fake'] });
  });
  afterAll(async () => {
    await worker?.close();
    await queues?.close();
    if (redis) {
      const keys = await redis.keys(`${prefix}:*`);
      if (keys.length > 0) await redis.del(...keys);
      redis.disconnect();
    }
    await fake?.close();
  });

  /** Adds a request that BullMQ will fail as stalled out the moment a worker takes it. */
  async function stalledOut(data: RequestJobData): Promise<void> {
    // Delayed so that no worker takes it before it is marked; then due at once.
    const job = await queues.requests.add('moa', data, { jobId: data.requestId, delay: 600_000 });
    await redis.hset(queues.requests.toKey(data.requestId), 'defa', STALLED_OUT);
    await job.promote();
  }

  it('records a batch item as failed, and its batch finalizes', async () => {
    const batchId = 'batch_stalledout';
    await redis.hset(batchKey(prefix, batchId), {
      id: batchId,
      status: 'in_progress',
      validated: '1',
      total: 1,
      items: 1,
      completed: 0,
      failed: 0,
      cancelled: 0,
      created_at: Math.floor(Date.now() / 1000),
      input_file_id: 'file-x',
    });
    await stalledOut({
      requestId: batchItemRequestId(batchId, 0),
      tenant: 'default',
      preset: config().presets.duo!,
      messages: [{ role: 'user', content: 'never run' }],
      metadata: {},
      createdAt: Date.now(),
      source: 'batch',
      batch: { id: batchId, customId: 'only' },
    });
    const hash = await pollUntil(
      () => redis.hgetall(batchKey(prefix, batchId)),
      (value) => value.status === 'completed',
      30_000,
    );
    expect(hash).toMatchObject({ completed: '0', failed: '1' });
    expect(await queues.requests.getJobState(batchItemRequestId(batchId, 0))).toBe('failed');
    expect(await redis.exists(batchErrorKey(prefix, batchId))).toBe(0); // turned into the error file
    expect(fake.requests).toHaveLength(0);
  });

  it('sends a request its done event and queues its webhook', async () => {
    const requestId = 'job_stalledoutinteractive01';
    await stalledOut({
      requestId,
      tenant: 'default',
      preset: config().presets.duo!,
      messages: [{ role: 'user', content: 'never run' }],
      metadata: {},
      webhook: { url: 'http://127.0.0.1:9/hook' },
      createdAt: Date.now(),
      source: 'jobs',
    });
    const events = await pollUntil(
      () => redis.xrange(eventsKey(prefix, requestId), '-', '+'),
      (entries) => entries.length > 0,
      30_000,
    );
    expect(events.map(([, fields]) => JSON.parse(fields[1]!))).toEqual([{ type: 'done', status: 'failed' }]);
    expect(await queues.webhooks.getJobState(`${requestId}-webhook`)).not.toBe('unknown');
    expect((await queues.requests.getJob(requestId))!.failedReason).toBe(STALLED_OUT);
  });
});
