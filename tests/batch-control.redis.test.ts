import { pollUntil as waitFor } from '@moa-queue/test-support';
import OpenAI, { toFile } from 'openai';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { batchInput } from './support/batch-input.js';
import { startMoaStack, type MoaStack } from './support/moa-stack.js';

type Batch = OpenAI.Batches.Batch & { moa: { cost_usd: number; cancelled: number } };

describe('batch priority and cancel on a small worker', () => {
  let stack: MoaStack;
  let client: OpenAI;

  beforeAll(async () => {
    stack = await startMoaStack({
      name: 'batch-control',
      redisUrl: inject('redisUrl'),
      workers: 1,
      fake: { defaultLatencyMs: 40 },
      workerEnv: { WORKER_CONCURRENCY: '4' },
    });
    client = new OpenAI({ baseURL: `${await stack.listen()}/v1`, apiKey: 'unused', maxRetries: 0 });
  });
  afterAll(async () => {
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

  it('serves an interactive request ahead of a big batch queued before it', async () => {
    const started = Date.now();
    const batch = await createBatch(200, 'bulk');
    expect(batch.status).toBe('validating');
    // Every item is queued (the validation job has run) before the interactive request comes.
    const validated = await waitFor(
      () => retrieve(batch.id),
      (value) => value.status !== 'validating',
    );
    expect(validated.request_counts?.total).toBe(200);
    const submittedAt = Date.now();
    const job = await stack.submit({
      preset: 'three',
      messages: [{ role: 'user', content: 'an interactive question' }],
    });
    const finished = await stack.waitFor(job.id, 60_000);
    const interactiveLatency = Date.now() - submittedAt;
    expect(finished.status).toBe('completed');
    const atThatMoment = await retrieve(batch.id);
    // It finished while most of the batch, queued earlier, was still waiting.
    expect(atThatMoment.request_counts!.completed).toBeLessThan(100);
    // Items run one after another (item i has priority 1000 + i, and its calls inherit it), not
    // layer by layer across the whole batch: results arrive from the start, not all at the end.
    const firstDone = await waitFor(
      () => retrieve(batch.id),
      (value) => value.request_counts!.completed > 0,
    );
    const firstResultAfter = Date.now() - started;
    expect(firstDone.request_counts!.completed).toBeLessThan(100);
    const done = await waitFor(
      () => retrieve(batch.id),
      (value) => value.status === 'completed',
    );
    const batchTime = Date.now() - started;
    expect(done.request_counts).toEqual({ total: 200, completed: 200, failed: 0 });
    expect(interactiveLatency).toBeLessThan(batchTime / 4);
    expect(firstResultAfter).toBeLessThan(batchTime / 4);
  });

  it('cancels mid-batch: keeps what finished, runs nothing more', async () => {
    const batch = await createBatch(80, 'cancel');
    await waitFor(
      () => retrieve(batch.id),
      (value) => value.request_counts!.completed >= 3,
    );
    const cancelling = (await client.batches.cancel(batch.id)) as Batch;
    expect(['cancelling', 'cancelled']).toContain(cancelling.status);
    expect(cancelling.cancelling_at).not.toBeNull();
    const cancelled = await waitFor(
      () => retrieve(batch.id),
      (value) => value.status === 'cancelled',
      60_000,
    );
    expect(cancelled.cancelled_at).not.toBeNull();
    const counts = cancelled.request_counts!;
    expect(counts.total).toBe(80);
    expect(counts.completed).toBeGreaterThanOrEqual(3);
    expect(counts.completed).toBeLessThan(80);
    expect(counts.completed + counts.failed + cancelled.moa.cancelled).toBe(80);

    const providerCalls = stack.fake.requests.length;
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(stack.fake.requests.length).toBe(providerCalls);

    const read = async (id: string | null | undefined) =>
      id
        ? (await (await client.files.content(id)).text())
            .trim()
            .split('\n')
            .map(
              (line) =>
                JSON.parse(line) as {
                  custom_id: string;
                  response: { status_code: number } | null;
                  error: { code: string } | null;
                },
            )
        : [];
    const output = await read(cancelled.output_file_id);
    const errors = await read(cancelled.error_file_id);
    expect(output).toHaveLength(counts.completed);
    expect(output.every((line) => line.response?.status_code === 200)).toBe(true);
    expect(errors).toHaveLength(80 - counts.completed);
    expect(errors.every((line) => line.error?.code === 'batch_cancelled')).toBe(true);
    const all = new Set([...output, ...errors].map((line) => line.custom_id));
    expect(all.size).toBe(80);

    // A finished batch cannot be cancelled again; a cancelled one answers as it is.
    expect(((await client.batches.cancel(batch.id)) as Batch).status).toBe('cancelled');
  });
});
