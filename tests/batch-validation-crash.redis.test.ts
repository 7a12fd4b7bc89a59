import { batchKey, claimBatchCustomIds } from '@moa-queue/contract';
import { pollUntil } from '@moa-queue/test-support';
import { Redis } from 'ioredis';
import OpenAI, { toFile } from 'openai';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startMoaStack, type MoaStack } from './support/moa-stack.js';

type Batch = OpenAI.Batches.Batch & { moa: { cost_usd: number; cancelled: number } };

interface FileLine {
  custom_id: string | null;
  response: { status_code: number } | null;
  error: { code: string; message: string } | null;
}

/**
 * The 40,000-line tests wait up to 120 s for the validation to reach a point
 * and 180 s for the batch to end; the suite's 60 s default cut them short on
 * a loaded machine (load average 10 on 2 cores) before their own waits did.
 */
const LONG_TEST_MS = 360_000;

/** Padding that makes each line cost the validation some work (about 1 KB a line). */
const PADDING = 'x'.repeat(900);

/**
 * A large input file: mostly lines that name no preset (cheap to run: they
 * only go to the error file, but each one is parsed and checked), every
 * 100th line a real request, every 1000th (offset 550) a duplicate custom_id
 * of an earlier real one, a few lines of broken JSON and a few blank ones.
 */
function largeFile(lines: number, tag: string) {
  const text: string[] = [];
  const expected = { valid: new Set<string>(), duplicates: 0, invalidJson: 0, noModel: 0 };
  const request = (customId: string, model: string, content: string) =>
    JSON.stringify({
      custom_id: customId,
      method: 'POST',
      url: '/v1/chat/completions',
      body: { model, messages: [{ role: 'user', content }] },
    });
  for (let index = 0; index < lines; index += 1) {
    if (index % 100 === 0) {
      text.push(request(`${tag}-${index}`, 'three', `${tag} prompt ${index}`));
      expected.valid.add(`${tag}-${index}`);
    } else if (index % 1000 === 550) {
      text.push(request(`${tag}-${index - 550}`, 'three', `${tag} duplicate ${index}`));
      expected.duplicates += 1;
    } else if (index % 5000 === 777) {
      text.push(`{"custom_id": "${tag}-${index}", "method": "PO`);
      expected.invalidJson += 1;
    } else {
      text.push(request(`${tag}-${index}`, 'no-such-preset', `${index} ${PADDING}`));
      expected.noModel += 1;
    }
    if (index % 7000 === 3) text.push('');
  }
  return { content: Buffer.from(`${text.join('\n')}\n`), expected };
}

/**
 * Validation is a job on the batches queue: a worker killed in the middle of
 * validating a large file leaves the job to BullMQ's stalled-job recovery,
 * and the next worker resumes it from its last checkpoint. Nothing is
 * counted twice, no line is taken for a duplicate of itself, and the batch
 * completes with exact counts.
 */
describe('batch validation survives a worker killed midway', { timeout: LONG_TEST_MS }, () => {
  let stack: MoaStack;
  let client: OpenAI;

  beforeAll(async () => {
    stack = await startMoaStack({
      name: 'batch-validation-crash',
      redisUrl: inject('redisUrl'),
      workers: 1,
      fake: { defaultLatencyMs: 5 },
    });
    client = new OpenAI({ baseURL: `${await stack.listen()}/v1`, apiKey: 'unused', maxRetries: 0 });
  });
  afterAll(async () => {
    await stack?.stop();
    // The 40 MB input files and their error files would stay in the shared Redis for 30 days.
    if (stack) {
      const redis = new Redis(inject('redisUrl'));
      const keys = await redis.keys(`${stack.prefix}:*`);
      for (let start = 0; start < keys.length; start += 500)
        await redis.unlink(...keys.slice(start, start + 500));
      redis.disconnect();
    }
  });

  const download = async (fileId: string | null | undefined): Promise<FileLine[]> =>
    fileId
      ? (await (await client.files.content(fileId)).text())
          .trim()
          .split('\n')
          .map((line) => JSON.parse(line) as FileLine)
      : [];

  it('SIGKILL of the worker validating a 40,000-line file: another resumes it, counts are exact', async () => {
    const lines = 40_000;
    const { content, expected } = largeFile(lines, 'crash');
    const file = await client.files.create({ file: await toFile(content, 'large.jsonl'), purpose: 'batch' });
    const key = batchKey(stack.prefix, '');
    const created = (await client.batches.create({
      input_file_id: file.id,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
    })) as Batch;
    expect(created.status).toBe('validating');

    // Kill the worker once a few chunks are committed, well before the end of the file.
    const victim = stack.workers[0]!;
    await pollUntil(
      async () => Number((await stack.redis.hget(`${key}${created.id}`, 'items')) ?? 0),
      (items) => items >= 2000,
      120_000,
      5,
    );
    await victim.stop('SIGKILL');
    const atKill = await stack.redis.hgetall(`${key}${created.id}`);
    expect(atKill.validated).toBeUndefined();
    expect(atKill.status).toBe('validating');
    expect(Number(atKill.items)).toBeLessThan(lines);

    // No worker runs now: the batch stays validating, its job still active under a lock that lapses.
    expect(await stack.queues.batches.getJobState(`${created.id}-validate`)).toBe('active');
    const rescuer = await stack.startWorker();
    const resumed = await rescuer.waitForLine((line) => line.includes('batch validation resumed'), 60_000);
    expect(Number((JSON.parse(resumed) as { fromLine: number }).fromLine)).toBeGreaterThan(0);

    const done = await pollUntil(
      async () => (await client.batches.retrieve(created.id)) as Batch,
      (batch) => ['completed', 'failed', 'cancelled', 'expired'].includes(batch.status),
      180_000,
      200,
    );
    const invalid = expected.duplicates + expected.invalidJson + expected.noModel;
    expect(done.status).toBe('completed');
    expect(done.request_counts).toEqual({ total: lines, completed: expected.valid.size, failed: invalid });

    const output = await download(done.output_file_id);
    expect(output).toHaveLength(expected.valid.size);
    expect(new Set(output.map((line) => line.custom_id))).toEqual(expected.valid);

    const errors = await download(done.error_file_id);
    expect(errors).toHaveLength(invalid);
    const byCode = new Map<string, number>();
    for (const line of errors) byCode.set(line.error!.code, (byCode.get(line.error!.code) ?? 0) + 1);
    expect(Object.fromEntries(byCode)).toEqual({
      duplicate_custom_id: expected.duplicates,
      invalid_json: expected.invalidJson,
      model_not_found: expected.noModel,
    });
    // Every duplicate is a later line reusing a real request's id, never a line seen twice by the re-run.
    for (const line of errors.filter((entry) => entry.error!.code === 'duplicate_custom_id')) {
      expect(expected.valid.has(line.custom_id!)).toBe(true);
    }
    const failedIds = errors
      .filter((entry) => entry.error!.code === 'model_not_found')
      .map((entry) => entry.custom_id);
    expect(new Set(failedIds).size).toBe(failedIds.length);
  });

  it('a cancel during validation stops it at the next chunk; what it enqueued is drained', async () => {
    const lines = 40_000;
    const { content } = largeFile(lines, 'midcancel');
    const file = await client.files.create({ file: await toFile(content, 'cancel.jsonl'), purpose: 'batch' });
    const created = (await client.batches.create({
      input_file_id: file.id,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
    })) as Batch;
    await pollUntil(
      async () => Number((await stack.redis.hget(batchKey(stack.prefix, created.id), 'items')) ?? 0),
      (items) => items >= 2000,
      120_000,
      5,
    );
    const cancelling = (await client.batches.cancel(created.id)) as Batch;
    expect(cancelling.status).toBe('cancelling');
    const cancelled = await pollUntil(
      async () => (await client.batches.retrieve(created.id)) as Batch,
      (batch) => batch.status !== 'cancelling',
      180_000,
      200,
    );
    expect(cancelled.status).toBe('cancelled');
    const counts = cancelled.request_counts!;
    // The validation stopped early: the total is what it had read, all of it accounted for.
    expect(counts.total).toBeGreaterThanOrEqual(2000);
    expect(counts.total).toBeLessThan(lines);
    expect(counts.completed + counts.failed + cancelled.moa.cancelled).toBe(counts.total);
    const output = await download(cancelled.output_file_id);
    const errors = await download(cancelled.error_file_id);
    expect(output.length + errors.length).toBe(counts.total);
  });

  it('takes a line that claims its own custom_id again (a re-run) for itself, not for a duplicate', async () => {
    const batchId = 'batch_claimrerun';
    await stack.redis.hset(batchKey(stack.prefix, batchId), { id: batchId, status: 'validating' });
    const chunk = [
      { customId: 'a', index: 0 },
      { customId: 'b', index: 1 },
      { customId: 'a', index: 2 },
    ];
    expect(await claimBatchCustomIds(stack.redis, stack.prefix, batchId, chunk)).toEqual([
      false,
      false,
      true,
    ]);
    // The run died before committing the chunk; the next run claims the same lines again.
    expect(await claimBatchCustomIds(stack.redis, stack.prefix, batchId, chunk)).toEqual([
      false,
      false,
      true,
    ]);
    expect(
      await claimBatchCustomIds(stack.redis, stack.prefix, batchId, [{ customId: 'b', index: 7 }]),
    ).toEqual([true]);
    expect(await stack.redis.hget(batchKey(stack.prefix, batchId), 'v_inflight')).toBe('1');
    await stack.redis.hset(batchKey(stack.prefix, batchId), 'status', 'failed');
    expect(await claimBatchCustomIds(stack.redis, stack.prefix, batchId, chunk)).toBeUndefined();
  });
});
