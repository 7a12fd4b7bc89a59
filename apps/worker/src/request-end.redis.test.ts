import {
  batchItemRequestId,
  cancelKey,
  CANCEL_MARKER_TTL_SECONDS,
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
import { testWorkerConfig } from './testing/test-worker-config.js';

/** BullMQ's reason for a job that stalled more often than `maxStalledCount` allows. */
const STALLED_OUT = 'job stalled more than allowable limit';

describe('every request ends through endRequest, whatever its outcome', () => {
  let fake: FakeProvider;
  let worker: MoaWorker;
  let redis: Redis;
  let queues: MoaQueues;
  const prefix = uniquePrefix('request-end');
  const config = () =>
    parseMoaConfig({
      providers: { fake: { baseURL: fake.url, maxAttempts: 3 } },
      models: {
        'fake/alpha': { inputCostPerMTok: 1, outputCostPerMTok: 1 },
        'fake/beta': { inputCostPerMTok: 1, outputCostPerMTok: 1 },
        'fake/aggregator': { inputCostPerMTok: 1, outputCostPerMTok: 1 },
      },
      presets: {
        duo: {
          layers: [[{ model: 'fake/alpha' }, { model: 'fake/beta' }]],
          aggregator: { model: 'fake/aggregator' },
        },
        // Layer 1 fits its cap; the aggregator (2048 tokens at $1/M) never does.
        capped: {
          layers: [[{ model: 'fake/alpha' }, { model: 'fake/beta' }]],
          aggregator: { model: 'fake/aggregator' },
          maxCostUsd: 0.0015,
        },
        agreeing: {
          layers: [[{ model: 'fake/same' }, { model: 'fake/same' }], [{ model: 'fake/alpha' }]],
          aggregator: { model: 'fake/aggregator' },
          earlyStop: { minAgreement: 1 },
        },
      },
      defaultPreset: 'duo',
      webhooks: { allowHosts: ['127.0.0.1'] },
    });

  beforeAll(async () => {
    fake = await createFakeProvider({ defaultLatencyMs: 5 });
    worker = await startMoaWorker({
      config: testWorkerConfig({ redisUrl: inject('redisUrl'), queuePrefix: prefix, moa: config() }),
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

  it('records a batch item that BullMQ failed without running it, and its batch finalizes', async () => {
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

  it('sends a request that BullMQ failed without running it its done event and webhook', async () => {
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

  /** The data of a request on a preset of the config. */
  function requestData(
    requestId: string,
    preset: string,
    extra: Partial<RequestJobData> = {},
  ): RequestJobData {
    return {
      requestId,
      tenant: 'default',
      preset: config().presets[preset]!,
      messages: [{ role: 'user', content: 'end me' }],
      metadata: {},
      createdAt: Date.now(),
      source: 'jobs',
      ...extra,
    };
  }

  async function jobsFinished(outcome: string): Promise<number> {
    const metric = await worker.metrics.jobsFinished.get();
    return metric.values
      .filter((value) => value.labels.outcome === outcome)
      .reduce((sum, value) => sum + value.value, 0);
  }

  it('ends every outcome the same way: done event, webhook, metrics', async () => {
    const before = {
      completed: await jobsFinished('completed'),
      failed: await jobsFinished('failed'),
      cancelled: await jobsFinished('cancelled'),
    };
    const outcomes = [
      { requestId: 'job_endcompleted', preset: 'duo', status: 'completed' },
      { requestId: 'job_endagreement', preset: 'agreeing', status: 'completed' },
      { requestId: 'job_endcostcap', preset: 'capped', status: 'failed' },
      { requestId: 'job_endcancelled', preset: 'duo', status: 'cancelled' },
    ];
    fake.setBehaviour('same', { content: 'the same answer' });
    await redis.set(cancelKey(prefix, 'job_endcancelled'), '1', 'EX', CANCEL_MARKER_TTL_SECONDS);
    for (const { requestId, preset } of outcomes) {
      await queues.requests.add(
        'moa',
        requestData(requestId, preset, { webhook: { url: 'http://127.0.0.1:9/hook' } }),
        {
          jobId: requestId,
        },
      );
    }
    for (const { requestId, status } of outcomes) {
      const events = await pollUntil(
        () => redis.xrange(eventsKey(prefix, requestId), '-', '+'),
        (entries) => entries.some(([, fields]) => JSON.parse(fields[1]!).type === 'done'),
        30_000,
      );
      const done = events
        .map(([, fields]) => JSON.parse(fields[1]!))
        .filter((event) => event.type === 'done');
      expect(done, requestId).toEqual([{ type: 'done', status }]);
      expect(await queues.webhooks.getJobState(`${requestId}-webhook`), requestId).not.toBe('unknown');
    }
    const costCapped = await queues.requests.getJob('job_endcostcap');
    expect(costCapped!.progress).toMatchObject({
      error: { code: 'cost_cap_exceeded' },
      stopped: { reason: 'cost_cap', afterLayer: 1 },
    });
    const agreed = await queues.requests.getJob('job_endagreement');
    expect(agreed!.returnvalue).toMatchObject({ stopped: { reason: 'agreement', afterLayer: 1 } });
    await pollUntil(
      () => jobsFinished('cancelled'),
      (count) => count > before.cancelled,
      30_000,
    );
    expect(await jobsFinished('completed')).toBe(before.completed + 2);
    expect(await jobsFinished('failed')).toBe(before.failed + 1);
    expect(await jobsFinished('cancelled')).toBe(before.cancelled + 1);
    const stops = await worker.metrics.policyStops.get();
    expect(
      stops.values.map((value) => [value.labels.preset, value.labels.reason, value.value]).sort(),
    ).toEqual([
      ['agreeing', 'agreement', 1],
      ['capped', 'cost_cap', 1],
    ]);
  });

  it('writes the batch line of every outcome', async () => {
    const batchId = 'batch_everyoutcome';
    await redis.hset(batchKey(prefix, batchId), {
      id: batchId,
      status: 'in_progress',
      validated: '1',
      total: 3,
      items: 3,
      completed: 0,
      failed: 0,
      cancelled: 0,
      created_at: Math.floor(Date.now() / 1000),
      input_file_id: 'file-x',
    });
    const items = ['duo', 'capped', 'duo'].map((preset, index) =>
      requestData(batchItemRequestId(batchId, index), preset, {
        source: 'batch',
        batch: { id: batchId, customId: `item-${index}` },
      }),
    );
    await redis.set(cancelKey(prefix, items[2]!.requestId), '1', 'EX', CANCEL_MARKER_TTL_SECONDS);
    for (const data of items) await queues.requests.add('moa', data, { jobId: data.requestId });
    const hash = await pollUntil(
      () => redis.hgetall(batchKey(prefix, batchId)),
      (value) => value.status === 'completed',
      30_000,
    );
    // Three lines, one per item: the cancelled item of a batch that is not itself being cancelled
    // counts as failed (OpenAI's request_counts know completed and failed only).
    expect(hash).toMatchObject({ completed: '1', failed: '2', cancelled: '0' });
  });
});
