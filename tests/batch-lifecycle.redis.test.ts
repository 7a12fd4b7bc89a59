import { pollUntil as until } from '@moa-queue/test-support';
import { createApp } from '@moa-queue/api';
import {
  batchErrorLine,
  batchKey,
  batchObject,
  newBatchRequestId,
  queueBatchJob,
  readBatchHash,
  recordBatchItem,
} from '@moa-queue/contract';
import OpenAI, { toFile } from 'openai';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startMoaStack, type MoaStack } from './support/moa-stack.js';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { once } from 'node:events';

describe('batch accounting, expiry and validation failures', () => {
  let stack: MoaStack;
  let server: Server;
  let client: OpenAI;

  beforeAll(async () => {
    stack = await startMoaStack({
      name: 'batch-lifecycle',
      redisUrl: inject('redisUrl'),
      workers: 1,
      fake: { defaultLatencyMs: 100 },
      workerEnv: { WORKER_CONCURRENCY: '2' },
    });
    // An API whose completion window is 1.5 s, to watch a batch expire.
    const app = createApp({
      queues: stack.queues,
      redis: stack.redis,
      config: stack.config,
      logger: pino({ level: 'silent' }),
      batches: { completionWindowMs: 1500 },
    });
    server = app.listen(0, '127.0.0.1');
    await once(server, 'listening');
    client = new OpenAI({
      baseURL: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`,
      apiKey: 'unused',
      maxRetries: 0,
    });
  });
  afterAll(async () => {
    server?.closeAllConnections();
    server?.close();
    await stack?.stop();
  });

  it('counts an item once however often its outcome is reported, and finalizes at the last one', async () => {
    const { redis, prefix } = stack;
    const batchId = 'batch_accountingtest';
    await redis.hset(batchKey(prefix, batchId), {
      id: batchId,
      status: 'in_progress',
      validated: '1',
      total: 2,
      completed: 0,
      failed: 0,
      cancelled: 0,
      items: 0,
      created_at: 1,
      input_file_id: 'file-x',
    });
    const outcome = (customId: string, kind: 'completed' | 'failed') => {
      const lineId = newBatchRequestId();
      return {
        customId,
        kind,
        lineId,
        line:
          kind === 'completed'
            ? JSON.stringify({
                id: lineId,
                custom_id: customId,
                response: { status_code: 200, request_id: 'job_x', body: {} },
                error: null,
              })
            : batchErrorLine(lineId, customId, { code: 'moa_failed', message: 'boom' }),
        costUsd: 0.25,
        promptTokens: 10,
        completionTokens: 5,
      };
    };
    expect(await recordBatchItem(redis, prefix, batchId, outcome('a', 'completed'))).toEqual({
      recorded: true,
      finalize: false,
    });
    // A re-run orchestrator reports the same item again: nothing changes.
    expect(await recordBatchItem(redis, prefix, batchId, outcome('a', 'completed'))).toEqual({
      recorded: false,
      finalize: false,
    });
    expect(await recordBatchItem(redis, prefix, batchId, outcome('b', 'failed'))).toEqual({
      recorded: true,
      finalize: true,
    });
    const hash = (await readBatchHash(redis, prefix, batchId))!;
    expect(batchObject(hash)).toMatchObject({
      status: 'finalizing',
      request_counts: { total: 2, completed: 1, failed: 1 },
      usage: { input_tokens: 20, output_tokens: 10, total_tokens: 30 },
      moa: { cost_usd: 0.5, cancelled: 0 },
    });
    await queueBatchJob(stack.queues, 'finalize', batchId);
    const done = await until(
      async () => batchObject((await readBatchHash(redis, prefix, batchId))!),
      (batch) => batch.status === 'completed',
    );
    expect(done.output_file_id).toMatch(/^file-/);
    expect(done.error_file_id).toMatch(/^file-/);
    const output = await (await client.files.content(done.output_file_id!)).text();
    expect(
      output
        .trim()
        .split('\n')
        .map((line) => (JSON.parse(line) as { custom_id: string }).custom_id),
    ).toEqual(['a']);
    // The working lists are gone; late reports change nothing.
    expect(await recordBatchItem(redis, prefix, batchId, outcome('c', 'completed'))).toEqual({
      recorded: false,
      finalize: false,
    });
  });

  it('expires a batch at the end of its window: finished results stay downloadable', async () => {
    const lines = Array.from({ length: 30 }, (_, index) =>
      JSON.stringify({
        custom_id: `expiring-${index}`,
        method: 'POST',
        url: '/v1/chat/completions',
        body: { model: 'three', messages: [{ role: 'user', content: `expiring ${index}` }] },
      }),
    );
    const file = await client.files.create({
      file: await toFile(Buffer.from(lines.join('\n')), 'expiring.jsonl'),
      purpose: 'batch',
    });
    const created = await client.batches.create({
      input_file_id: file.id,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
    });
    expect(created.expires_at! - created.created_at).toBeLessThanOrEqual(2);
    const expired = await until(
      () => client.batches.retrieve(created.id),
      (batch) => batch.status === 'expired',
    );
    expect(expired.expired_at).not.toBeNull();
    const counts = expired.request_counts!;
    const cancelled = (expired as unknown as { moa: { cancelled: number } }).moa.cancelled;
    expect(counts.completed).toBeLessThan(30);
    expect(cancelled).toBeGreaterThan(0);
    expect(counts.completed + counts.failed + cancelled).toBe(30);
    const errors = (await (await client.files.content(expired.error_file_id!)).text()).trim().split('\n');
    expect(errors).toHaveLength(counts.failed + cancelled);
    expect(errors.map((line) => (JSON.parse(line) as { error: { code: string } }).error.code)).toContain(
      'batch_expired',
    );
    if (counts.completed > 0) {
      const output = (await (await client.files.content(expired.output_file_id!)).text()).trim().split('\n');
      expect(output).toHaveLength(counts.completed);
    }
  });

  it('fails a batch whose input file is gone when its validation job runs', async () => {
    const { redis, prefix } = stack;
    const batchId = 'batch_inputfilegone';
    await redis.hset(batchKey(prefix, batchId), {
      id: batchId,
      status: 'validating',
      total: 0,
      completed: 0,
      failed: 0,
      items: 0,
      created_at: 1,
      lines: 3,
      input_file_id: 'file-gone',
    });
    await queueBatchJob(stack.queues, 'validate', batchId);
    const failed = await until(
      async () => batchObject((await readBatchHash(redis, prefix, batchId))!),
      (batch) => batch.status === 'failed',
    );
    expect(failed.errors?.data[0]).toMatchObject({ code: 'file_not_found', param: 'input_file_id' });
  });
});
