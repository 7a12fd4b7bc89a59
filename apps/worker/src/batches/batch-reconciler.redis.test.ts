import {
  batchDoneKey,
  batchIndexKey,
  batchItemRequestId,
  batchKey,
  batchOutputKey,
  batchErrorKey,
  BATCHES_QUEUE,
  createMoaQueues,
  REQUESTS_QUEUE,
  RedisFileStore,
  type MoaQueues,
  type RequestJobData,
  type RequestResult,
} from '@moa-queue/contract';
import { builtInConfig } from '@moa-queue/moa';
import { pollUntil, uniquePrefix } from '@moa-queue/test-support';
import { UnrecoverableError, Worker, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { recordBatchItemEnd, requestEndOf } from './batch-item-hook.js';
import { createBatchReconciler } from './batch-reconciler.js';

const logger = pino({ level: 'silent' });

describe('the batch reconciler', () => {
  let redis: Redis;
  let queues: MoaQueues;
  let ender: Worker<RequestJobData, RequestResult>;
  const prefix = uniquePrefix('reconciler');
  /** How each item's request ends when the stand-in orchestrator below runs it (none: it never runs). */
  const outcomes = new Map<string, 'complete' | 'fail'>();

  beforeAll(async () => {
    redis = new Redis(inject('redisUrl'), { maxRetriesPerRequest: null });
    queues = createMoaQueues({ connection: redis, prefix, providers: [] });
    // Ends requests the way the orchestrator does in BullMQ, but writes none of their ends:
    // as if the worker that ran them had died before recording them.
    ender = new Worker<RequestJobData, RequestResult>(
      REQUESTS_QUEUE,
      async (job: Job<RequestJobData, RequestResult>) => {
        if (outcomes.get(job.id!) === 'fail')
          throw new UnrecoverableError('job stalled more than allowable limit');
        return {
          status: 'completed',
          output: `answer of ${job.data.batch?.customId}`,
          usage: { promptTokens: 3, completionTokens: 4 },
          costUsd: 0.5,
          error: null,
        } as RequestResult;
      },
      { connection: redis, prefix, concurrency: 4 },
    );
  });
  afterAll(async () => {
    await ender.close();
    await queues.close();
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length > 0) await redis.del(...keys);
    redis.disconnect();
  });

  /** A validated, running batch of `total` items, each queued as its request. */
  async function runningBatch(batchId: string, total: number): Promise<RequestJobData[]> {
    const now = Date.now();
    await redis
      .multi()
      .hset(batchKey(prefix, batchId), {
        id: batchId,
        status: 'in_progress',
        validated: '1',
        total,
        items: total,
        completed: 0,
        failed: 0,
        cancelled: 0,
        created_at: Math.floor(now / 1000),
        input_file_id: 'file-x',
      })
      .zadd(batchIndexKey(prefix), now, batchId)
      .exec();
    const preset = builtInConfig().presets['moa']!;
    return Array.from({ length: total }, (_, index) => ({
      requestId: batchItemRequestId(batchId, index),
      tenant: 'default',
      preset,
      messages: [{ role: 'user' as const, content: `prompt ${index}` }],
      metadata: {},
      createdAt: now,
      source: 'batch' as const,
      batch: { id: batchId, customId: `c-${index}` },
    }));
  }

  it('records items that ended without being recorded, once, and the batch then finalizes', async () => {
    const batchId = 'batch_reconcileA';
    const items = await runningBatch(batchId, 4);
    outcomes.set(items[1]!.requestId, 'fail');
    outcomes.set(items[2]!.requestId, 'fail');
    // Item 0 ended and was recorded as the orchestrator does; 1 to 3 ended unrecorded.
    for (const data of items) await queues.requests.add('moa', data, { jobId: data.requestId });
    await pollUntil(
      () => Promise.all(items.map((data) => queues.requests.getJobState(data.requestId))),
      (states) => states.every((state) => state === 'completed' || state === 'failed'),
      30_000,
    );
    const first = (await queues.requests.getJob(items[0]!.requestId))!;
    await recordBatchItemEnd(
      { queues, redis, files: new RedisFileStore({ redis, prefix }), logger },
      items[0]!,
      requestEndOf(first, 'completed')!,
    );

    const reconcile = createBatchReconciler({
      queues,
      redis,
      files: new RedisFileStore({ redis, prefix }),
      logger,
    });
    // First pass: the batch is new to the reconciler, so it only notes where it stands.
    expect(await reconcile()).toMatchObject({ batches: 1, scanned: 0, recorded: 0 });
    // Second pass: nothing moved since, so its items are compared with BullMQ.
    expect(await reconcile()).toMatchObject({ batches: 1, scanned: 1, recorded: 3 });

    const hash = await redis.hgetall(batchKey(prefix, batchId));
    expect(hash).toMatchObject({ completed: '2', failed: '2', finalize: '1', status: 'finalizing' });
    expect(await redis.scard(batchDoneKey(prefix, batchId))).toBe(4);
    const output = (await redis.lrange(batchOutputKey(prefix, batchId), 0, -1)).map(
      (line) => JSON.parse(line) as { custom_id: string; response: { status_code: number } },
    );
    expect(output.map((line) => line.custom_id).sort()).toEqual(['c-0', 'c-3']);
    const errors = (await redis.lrange(batchErrorKey(prefix, batchId), 0, -1)).map(
      (line) => JSON.parse(line) as { custom_id: string; error: { message: string } },
    );
    expect(errors.map((line) => line.custom_id).sort()).toEqual(['c-1', 'c-2']);
    expect(errors[0]!.error.message).toBe('job stalled more than allowable limit');
    // The last item recorded queued the finalization.
    expect(await queues.batches.getJobState(`${batchId}-finalize`)).not.toBe('unknown');
    // A later pass records nothing twice.
    await reconcile();
    expect(await redis.hmget(batchKey(prefix, batchId), 'completed', 'failed')).toEqual(['2', '2']);
  });

  it('leaves items that have not ended alone, and queues again a finalization that is gone', async () => {
    const batchId = 'batch_reconcileB';
    const items = await runningBatch(batchId, 2);
    // Item 0 has not run (it waits in a queue nobody serves: delayed far ahead); item 1 never was queued.
    await queues.requests.add('moa', items[0]!, { jobId: items[0]!.requestId, delay: 3_600_000 });
    const reconcile = createBatchReconciler({
      queues,
      redis,
      files: new RedisFileStore({ redis, prefix }),
      logger,
    });
    await reconcile();
    expect(await reconcile()).toMatchObject({ recorded: 0 });
    expect(await redis.hmget(batchKey(prefix, batchId), 'completed', 'failed')).toEqual(['0', '0']);

    // Every item is accounted for but the finalize job is gone (it failed for good, say).
    await redis.hset(batchKey(prefix, batchId), { finalize: '1', status: 'finalizing', completed: 2 });
    expect(await reconcile()).toMatchObject({ finalizations: 1 });
    expect(await queues.batches.getJobState(`${batchId}-finalize-again`)).toBe('waiting');
    // While that one is pending, nothing more is queued.
    expect(await reconcile()).toMatchObject({ finalizations: 0 });
    // Once it is over with the batch still not ended, it is queued again under the same id.
    const failing = new Worker(
      BATCHES_QUEUE,
      async () => {
        throw new UnrecoverableError('gave up');
      },
      { connection: redis, prefix },
    );
    await pollUntil(
      () => queues.batches.getJobState(`${batchId}-finalize-again`),
      (state) => state === 'failed',
      30_000,
    );
    await failing.close();
    // (The stand-in failed the first test's finalization too: that one is queued again as well.)
    expect((await reconcile()).finalizations).toBeGreaterThanOrEqual(1);
    expect(await queues.batches.getJobState(`${batchId}-finalize-again`)).toBe('waiting');
  });
});
