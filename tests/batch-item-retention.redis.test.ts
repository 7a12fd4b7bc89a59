import {
  batchItemRequestId,
  batchItemsToForgetKey,
  cancelKey,
  tenantRequestsKey,
  type MoaQueues,
} from '@moa-queue/contract';
import { pollUntil } from '@moa-queue/test-support';
import { createBatchItemSweeper } from '@moa-queue/worker';
import type { Redis } from 'ioredis';
import OpenAI, { toFile } from 'openai';
import { pino } from 'pino';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { batchInput } from './support/batch-input.js';
import { startMoaStack, type MoaStack } from './support/moa-stack.js';

type Batch = OpenAI.Batches.Batch & { moa: { cost_usd: number; cancelled: number } };

/** A line of an output or error file, as far as these tests read it. */
interface FileLine {
  custom_id: string | null;
  response: { status_code: number; request_id: string; request_id_expires_at?: number } | null;
  error: { code: string } | null;
}

/** Every key of the stack's prefix that names one of the requests (job, calls, markers, streams). */
async function keysOf(redis: Redis, prefix: string, requestIds: readonly string[]): Promise<string[]> {
  const found: string[] = [];
  for (const id of requestIds) {
    // `<id>` then a non-digit or the end: item 1 must not match item 10's keys.
    const keys = [
      ...(await redis.keys(`${prefix}:*${id}`)),
      ...(await redis.keys(`${prefix}:*${id}[^0-9]*`)),
    ];
    found.push(...keys);
  }
  return [...new Set(found)];
}

/** Members of the queues' finished sets that are one of the requests or their calls. */
async function finishedMembersOf(
  redis: Redis,
  queues: MoaQueues,
  requestIds: readonly string[],
): Promise<string[]> {
  const members: string[] = [];
  for (const queue of queues.all()) {
    for (const state of ['completed', 'failed'] as const) {
      const ids = await redis.zrange(queue.toKey(state), 0, -1);
      members.push(...ids.filter((id) => requestIds.some((requestId) => id.split('-')[0] === requestId)));
    }
  }
  return members;
}

/**
 * Issue 15, item 2: a batch item's request outlives its line only by a
 * grace. The stack's workers run with a grace of an hour, so they never
 * sweep during the test; the test runs the sweeper itself with a chosen
 * clock, which shows both sides of the promise without timing anything.
 */
describe('batch items are removed a grace after their line', () => {
  let stack: MoaStack;
  let client: OpenAI;
  const sweeper = () =>
    createBatchItemSweeper({
      queues: stack.queues,
      redis: stack.redis,
      logger: pino({ level: 'silent' }),
      batchItemGraceMs: 3_600_000,
    });

  beforeAll(async () => {
    stack = await startMoaStack({
      name: 'batch-item-retention',
      redisUrl: inject('redisUrl'),
      workers: 1,
      workerEnv: { BATCH_ITEM_GRACE_MS: '3600000' },
    });
    stack.fake.setBehaviour('dead', { failStatus: 400 });
    client = new OpenAI({ baseURL: `${await stack.listen()}/v1`, apiKey: 'unused', maxRetries: 0 });
  });
  afterAll(async () => {
    stack?.fake.setBehaviour('dead', undefined);
    stack?.fake.setBehaviour('aggregator', undefined);
    stack?.fake.release();
    await stack?.stop();
  });

  const createBatch = async (text: string, name: string) => {
    const file = await client.files.create({
      file: await toFile(Buffer.from(text), `${name}.jsonl`),
      purpose: 'batch',
    });
    return (await client.batches.create({
      input_file_id: file.id,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
    })) as Batch;
  };
  const linesOf = async (fileId: string | null | undefined): Promise<FileLine[]> =>
    fileId
      ? (await (await client.files.content(fileId)).text())
          .trim()
          .split('\n')
          .map((line) => JSON.parse(line) as FileLine)
      : [];

  it('says in each line until when request_id is readable, keeps it until then, and removes everything after', async () => {
    const { redis, prefix, queues } = stack;
    const failing = JSON.stringify({
      custom_id: 'fails',
      method: 'POST',
      url: '/v1/chat/completions',
      body: { model: 'all-dead', messages: [{ role: 'user', content: 'nobody answers' }] },
    });
    const created = await createBatch(`${batchInput(4, 'kept')}\n${failing}\nnot json`, 'kept');
    const batch = await pollUntil(
      async () => (await client.batches.retrieve(created.id)) as Batch,
      (value) => value.status === 'completed',
    );
    expect(batch.request_counts).toEqual({ total: 6, completed: 4, failed: 2 });
    const output = await linesOf(batch.output_file_id);
    const errors = await linesOf(batch.error_file_id);
    const ran = [...output, ...errors].filter((line) => line.response !== null);
    expect(ran).toHaveLength(5);
    const requestIds = ran.map((line) => line.response!.request_id);
    expect(requestIds.sort()).toEqual([0, 1, 2, 3, 4].map((index) => batchItemRequestId(created.id, index)));
    // The line that failed validation never had a request: nothing to promise.
    expect(errors.find((line) => line.response === null)?.error?.code).toBe('invalid_json');

    // Each promise is what the record script scheduled, in the same script as the line.
    const expiries = new Map<string, number>();
    for (const line of ran) {
      const expiresAt = line.response!.request_id_expires_at;
      expect(Number.isInteger(expiresAt)).toBe(true);
      expect(expiresAt).toBeGreaterThan(batch.created_at);
      expect(Number(await redis.zscore(batchItemsToForgetKey(prefix), line.response!.request_id))).toBe(
        expiresAt! * 1000,
      );
      expiries.set(line.response!.request_id, expiresAt!);
    }
    const before = await keysOf(redis, prefix, requestIds);
    expect(before.length).toBeGreaterThanOrEqual(5);
    expect(await finishedMembersOf(redis, queues, requestIds)).not.toHaveLength(0);

    // A second before the earliest promise: nothing goes, every request still answers.
    const earliest = Math.min(...expiries.values()) * 1000;
    expect(await sweeper()(earliest - 1000)).toEqual({ removed: 0, deferred: 0 });
    for (const id of requestIds) expect((await request(stack.app).get(`/v1/jobs/${id}`)).status).toBe(200);

    // At the latest promise: every request, call, marker and index entry is gone.
    const latest = Math.max(...expiries.values()) * 1000;
    expect(await sweeper()(latest)).toEqual({ removed: 5, deferred: 0 });
    for (const id of requestIds) {
      const answer = await request(stack.app).get(`/v1/jobs/${id}`);
      expect(answer.status).toBe(404);
    }
    expect(await keysOf(redis, prefix, requestIds)).toEqual([]);
    expect(await finishedMembersOf(redis, queues, requestIds)).toEqual([]);
    expect(await redis.zmscore(tenantRequestsKey(prefix, 'default'), ...requestIds)).toEqual(
      requestIds.map(() => null),
    );
    expect(await redis.zmscore(batchItemsToForgetKey(prefix), ...requestIds)).toEqual(
      requestIds.map(() => null),
    );
    // The answers live on in the batch's files.
    expect(await linesOf(batch.output_file_id)).toHaveLength(4);
  });

  it('puts off an item whose request is still running, and removes the markers of a cancelled batch', async () => {
    const { redis, prefix } = stack;
    stack.fake.setBehaviour('aggregator', { hold: true });
    const created = await createBatch(batchInput(3, 'cancelled'), 'cancelled');
    await pollUntil(
      () => stack.fake.held('aggregator'),
      (held) => held === 3,
    );
    const requestIds = [0, 1, 2].map((index) => batchItemRequestId(created.id, index));
    // An item still running when its time comes (here: any time) stays, and is put off.
    await redis.zadd(batchItemsToForgetKey(prefix), 1, requestIds[0]!);
    expect(await sweeper()(2)).toEqual({ removed: 0, deferred: 1 });
    expect(Number(await redis.zscore(batchItemsToForgetKey(prefix), requestIds[0]!))).toBe(2 + 3_600_000);

    await client.batches.cancel(created.id);
    stack.fake.setBehaviour('aggregator', undefined);
    stack.fake.release('aggregator');
    const cancelled = await pollUntil(
      async () => (await client.batches.retrieve(created.id)) as Batch,
      (value) => value.status === 'cancelled',
    );
    expect(cancelled.request_counts!.total).toBe(3);
    // The drain marked every item cancelled and handed each to the sweeper.
    expect(await redis.exists(...requestIds.map((id) => cancelKey(prefix, id)))).toBe(3);
    const due = await redis.zmscore(batchItemsToForgetKey(prefix), ...requestIds);
    expect(due.every((score) => score !== null)).toBe(true);
    const report = await sweeper()(Math.max(...due.map(Number)));
    expect(report).toEqual({ removed: 3, deferred: 0 });
    expect(await keysOf(redis, prefix, requestIds)).toEqual([]);
  });
});
