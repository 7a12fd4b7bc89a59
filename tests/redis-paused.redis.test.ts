import { pollUntil, startRedisServer, type RedisServerProcess } from '@moa-queue/test-support';
import OpenAI, { toFile } from 'openai';
import { afterAll, describe, expect, it } from 'vitest';
import { batchInput } from './support/batch-input.js';
import { redisUpOfWorkers, startMoaStack, type MoaStack } from './support/moa-stack.js';
import {
  expectAllCompleted,
  outageStory,
  submitRunningRequests,
  workersSeeRedisUp,
} from './support/worker-outage.js';

const BATCH_ITEMS = 30;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A paused Redis (SIGSTOP: a stuck host, a network that drops packets) fails
 * none of a worker's commands, it delays them all; meanwhile, by Redis's own
 * clock, the locks of running jobs may lapse, and once it resumes BullMQ's
 * stalled check requeues those jobs and counts a stall. Each pause here is
 * longer than the stack's 4 s locks, twice, with `WORKER_MAX_STALLED_COUNT=1`.
 * Each worker must notice each pause itself (its bounded probe: nothing else
 * fails), show it as `moa_redis_up 0`, and put any lock that lapsed meanwhile
 * down to the pause rather than count it as a crash. (Whether a lock lapses
 * depends on when Redis expires it after it resumes; without the probe, runs
 * here logged lapsed locks as "lost the lock of running jobs", counted.)
 */
describe('Redis paused twice for longer than the workers’ locks, in the middle of a run', () => {
  let server: RedisServerProcess | undefined;
  let stack: MoaStack | undefined;
  afterAll(async () => {
    server?.process.kill('SIGCONT');
    await stack?.stop();
    await server?.stop();
  });

  async function pause(): Promise<void> {
    server!.process.kill('SIGSTOP');
    try {
      // Each worker notices (a bounded write every 5 s) and says so on its metrics port.
      await workersSeeRedisUp(stack!, 0);
      // Longer than a lock and the stalled check's interval.
      await sleep(5000);
    } finally {
      server!.process.kill('SIGCONT');
    }
    await workersSeeRedisUp(stack!, 1);
  }

  it('loses no request or batch item and fails none for stalls: each worker notices each pause (moa_redis_up 0, one warning) and recovers', async () => {
    // This suite owns its Redis: it pauses it.
    server = await startRedisServer({ appendOnly: false });
    stack = await startMoaStack({
      name: 'redis-paused',
      redisUrl: server.url,
      workers: 2,
      fake: { defaultLatencyMs: 1500 },
      workerEnv: { LOG_LEVEL: 'info', WORKER_MAX_STALLED_COUNT: '1' },
    });
    // Calls of the requests' first layer are running when the batch starts, and when Redis stops.
    const created = await submitRunningRequests(stack, 'paused');
    // And a batch, whose validation, items and finalization go through the pauses too.
    const client = new OpenAI({ baseURL: `${await stack.listen()}/v1`, apiKey: 'unused', maxRetries: 0 });
    const file = await client.files.create({
      file: await toFile(Buffer.from(`${batchInput(BATCH_ITEMS, 'item')}\n`), 'redis-paused.jsonl'),
      purpose: 'batch',
    });
    const batch = await client.batches.create({
      input_file_id: file.id,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
    });
    await pollUntil(
      () => client.batches.retrieve(batch.id),
      (value) => value.status === 'in_progress',
      60_000,
      250,
    );
    expect(await redisUpOfWorkers(stack)).toEqual([1, 1]);
    const logsAtPause = stack.workers.map((worker) => worker.logs.length);
    await pause();
    // Second pause while the requests are still running (each has 3 layers of 1.5 s calls).
    const second = await stack.get(created[0]!.id);
    expect(second.status).not.toBe('completed');
    await pause();

    await expectAllCompleted(stack, created);
    const done = await pollUntil(
      () => client.batches.retrieve(batch.id),
      (value) => ['completed', 'failed', 'expired', 'cancelled'].includes(value.status),
      180_000,
      250,
    );
    expect({ status: done.status, counts: done.request_counts }).toEqual({
      status: 'completed',
      counts: { total: BATCH_ITEMS, completed: BATCH_ITEMS, failed: 0 },
    });
    const output = (await (await client.files.content(done.output_file_id!)).text())
      .split('\n')
      .filter((line) => line.trim())
      .map((line) => JSON.parse(line) as { custom_id: string; response: { status_code: number } | null });
    expect(new Set(output.map((line) => line.custom_id)).size).toBe(BATCH_ITEMS);
    expect(output.every((line) => line.response?.status_code === 200)).toBe(true);

    const story = stack.workers.map((worker, index) => outageStory(worker, logsAtPause[index]!));
    console.log(JSON.stringify({ pausedLogs: story }));
    for (const worker of story) {
      // One outage per pause, each found by the probe timing out, each ended.
      expect(worker).toMatchObject({ unavailable: 2, recovered: 2, errors: [] });
      expect(worker.seen).toContain('Command timed out');
      // Every lapsed lock was put down to the pause, none counted as a crash.
      expect(worker.counted).toBe(0);
      expect(worker.warnings).toBeLessThanOrEqual(6);
    }
  }, 300_000);
});
