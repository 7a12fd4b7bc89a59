import { batchItemRequestId, batchKey, queueBatchJob } from '@moa-queue/contract';
import { pollUntil } from '@moa-queue/test-support';
import OpenAI, { toFile } from 'openai';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { batchInput } from './support/batch-input.js';
import { startMoaStack, type MoaStack } from './support/moa-stack.js';

type Batch = OpenAI.Batches.Batch & { moa: { cost_usd: number; cancelled: number } };

/**
 * Every status of OpenAI's batch lifecycle, observed rather than inferred:
 * the provider holds the aggregator calls and the test pauses the batches
 * queue, so each state lasts until the test moves it on.
 */
describe('batch statuses: validating, in_progress, finalizing, cancel while validating', () => {
  let stack: MoaStack;
  let client: OpenAI;

  beforeAll(async () => {
    stack = await startMoaStack({ name: 'batch-validation', redisUrl: inject('redisUrl'), workers: 1 });
    client = new OpenAI({ baseURL: `${await stack.listen()}/v1`, apiKey: 'unused', maxRetries: 0 });
  });
  afterAll(async () => {
    stack?.fake.setBehaviour('aggregator', undefined);
    stack?.fake.release();
    await stack?.queues.batches.resume();
    await stack?.stop();
  });

  const createBatch = async (count: number, tag: string) => {
    const file = await client.files.create({
      file: await toFile(Buffer.from(batchInput(count, tag)), `${tag}.jsonl`),
      purpose: 'batch',
    });
    return (await client.batches.create({
      input_file_id: file.id,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
    })) as Batch;
  };
  const retrieve = async (id: string) => (await client.batches.retrieve(id)) as Batch;

  it('answers validating, then is seen in_progress, finalizing and completed', async () => {
    stack.fake.setBehaviour('aggregator', { hold: true });
    const created = await createBatch(3, 'statuses');
    // The answer comes before the file is read: no item is known yet.
    expect(created.status).toBe('validating');
    expect(created.request_counts).toEqual({ total: 0, completed: 0, failed: 0 });
    expect(created.in_progress_at).toBeNull();

    // Validated by the worker: every item queued, none can end (the aggregators are held).
    const running = await pollUntil(
      () => retrieve(created.id),
      (batch) => batch.status !== 'validating',
    );
    expect(running.status).toBe('in_progress');
    expect(running.request_counts?.total).toBe(3);
    expect(running.in_progress_at).toBeGreaterThanOrEqual(running.created_at);
    await pollUntil(
      () => stack.fake.held('aggregator'),
      (held) => held === 3,
    );

    // With the batches queue paused, the last item moves the batch to finalizing and its
    // finalize job waits: finalizing lasts until the output files are made.
    await stack.queues.batches.pause();
    try {
      stack.fake.setBehaviour('aggregator', undefined);
      expect(stack.fake.release('aggregator')).toBe(3);
      const finalizing = await pollUntil(
        () => retrieve(created.id),
        (batch) => batch.status !== 'in_progress',
      );
      expect(finalizing.status).toBe('finalizing');
      expect(finalizing.request_counts).toEqual({ total: 3, completed: 3, failed: 0 });
      expect(finalizing.finalizing_at).toBeGreaterThanOrEqual(finalizing.in_progress_at!);
      expect(finalizing.completed_at).toBeNull();
      expect(finalizing.output_file_id).toBeNull();
      expect(await stack.queues.batches.getJobState(`${created.id}-finalize`)).toBe('waiting');
      expect((await retrieve(created.id)).status).toBe('finalizing');
    } finally {
      await stack.queues.batches.resume();
    }
    const completed = await pollUntil(
      () => retrieve(created.id),
      (batch) => batch.status !== 'finalizing',
    );
    expect(completed.status).toBe('completed');
    expect(completed.completed_at).toBeGreaterThanOrEqual(completed.finalizing_at!);
    expect(completed.output_file_id).toMatch(/^file-/);
    const output = (await (await client.files.content(completed.output_file_id!)).text()).trim().split('\n');
    expect(output).toHaveLength(3);
  });

  it('cancels a batch while it is validating: nothing is enqueued, nothing runs', async () => {
    // The validation job waits on the paused queue, so the cancel lands during validating.
    await stack.queues.batches.pause();
    let created: Batch;
    try {
      created = await createBatch(40, 'early-cancel');
      expect(created.status).toBe('validating');
      const cancelling = (await client.batches.cancel(created.id)) as Batch;
      expect(cancelling.status).toBe('cancelling');
      expect(cancelling.cancelling_at).not.toBeNull();
      expect((await retrieve(created.id)).status).toBe('cancelling');
      // Cancelling twice is fine.
      expect(((await client.batches.cancel(created.id)) as Batch).status).toBe('cancelling');
    } finally {
      await stack.queues.batches.resume();
    }
    const cancelled = await pollUntil(
      () => retrieve(created.id),
      (batch) => batch.status !== 'cancelling',
    );
    expect(cancelled.status).toBe('cancelled');
    expect(cancelled.cancelled_at).not.toBeNull();
    expect(cancelled.in_progress_at).toBeNull();
    expect(cancelled.request_counts).toEqual({ total: 0, completed: 0, failed: 0 });
    expect(cancelled.moa.cancelled).toBe(0);
    expect(await stack.queues.requests.getJobState(batchItemRequestId(created.id, 0))).toBe('unknown');
    expect(
      stack.fake.requests.some((recorded) =>
        recorded.messages.some((message) => message.content.startsWith('early-cancel prompt')),
      ),
    ).toBe(false);
  });

  it('a re-run for a batch cancelled meanwhile finishes the chunk a killed run had in flight, then drains it', async () => {
    // The state a run leaves when it is killed after enqueueing a chunk and before committing it,
    // with a cancel come in since: the re-run must count that chunk (its items may exist) and
    // drain it, and read nothing further.
    const file = await client.files.create({
      file: await toFile(Buffer.from(batchInput(5, 'inflight')), 'inflight.jsonl'),
      purpose: 'batch',
    });
    const batchId = 'batch_inflightrerun';
    await stack.redis.hset(batchKey(stack.prefix, batchId), {
      id: batchId,
      tenant: 'default',
      status: 'cancelling',
      ending: 'cancelled',
      cancelling_at: Math.floor(Date.now() / 1000),
      endpoint: '/v1/chat/completions',
      input_file_id: file.id,
      completion_window: '24h',
      created_at: Math.floor(Date.now() / 1000),
      total: 0,
      completed: 0,
      failed: 0,
      cancelled: 0,
      items: 0,
      lines: 5,
      v_inflight: '1',
    });
    await queueBatchJob(stack.queues, 'validate', batchId);
    const cancelled = await pollUntil(
      () => retrieve(batchId),
      (batch) => batch.status !== 'cancelling',
    );
    expect(cancelled.status).toBe('cancelled');
    const counts = cancelled.request_counts!;
    expect(counts.total).toBe(5);
    expect(counts.completed + counts.failed + cancelled.moa.cancelled).toBe(5);
  });

  it('refuses a validate job whose data is not a batch id, without touching anything', async () => {
    const job = await stack.queues.batches.add('validate', { batchId: '../../etc' }, { attempts: 1 });
    const state = await pollUntil(
      () => stack.queues.batches.getJobState(job.id!),
      (value) => value === 'failed',
    );
    expect(state).toBe('failed');
    const failed = await stack.queues.batches.getJob(job.id!);
    expect(failed?.failedReason).toMatch(/^invalid job data: batchId: /);
  });
});
