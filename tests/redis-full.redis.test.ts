import { pollUntil, startRedisServer, type RedisServerProcess } from '@moa-queue/test-support';
import { Redis } from 'ioredis';
import OpenAI, { toFile } from 'openai';
import { afterAll, describe, expect, it } from 'vitest';
import { redisUpOfWorkers, startMoaStack, type MoaStack } from './support/moa-stack.js';

/** pino's numeric levels. */
const WARN = 40;
const ERROR = 50;

const ITEMS = 400;
const SQUEEZE_MS = 15_000;

interface OutputLine {
  custom_id: string;
  response: { status_code: number; request_id: string } | null;
  error: unknown;
}

/** Redis's `used_memory`, in bytes. */
async function usedMemory(redis: Redis): Promise<number> {
  const info = await redis.info('memory');
  return Number(/^used_memory:(\d+)/m.exec(info)?.[1]);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('Redis full (maxmemory below use, noeviction) for 15 s in the middle of a batch and a stream of jobs', () => {
  let server: RedisServerProcess | undefined;
  let admin: Redis | undefined;
  let stack: MoaStack | undefined;
  afterAll(async () => {
    await admin?.config('SET', 'maxmemory', '0').catch(() => undefined);
    admin?.disconnect();
    await stack?.stop();
    await server?.stop();
  });

  it('loses no accepted work: every job and batch item completes, the batch completes, workers log the outage, not its errors', async () => {
    // This suite owns its Redis: it squeezes its memory. No AOF, noeviction (startRedisServer's policy).
    server = await startRedisServer({ appendOnly: false });
    admin = new Redis(server.url, { maxRetriesPerRequest: null });
    stack = await startMoaStack({
      name: 'redis-full',
      redisUrl: server.url,
      workers: 2,
      fake: { defaultLatencyMs: 30 },
      // info, as in production; a short reconciler interval so that a batch it had to rescue shows up in the test.
      workerEnv: { LOG_LEVEL: 'info', WORKER_RECONCILE_INTERVAL_MS: '5000' },
    });
    const url = await stack.listen();
    const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'unused', maxRetries: 0, timeout: 20_000 });

    // A stream of POST /v1/jobs from before the squeeze until after it, one at a time.
    const accepted: string[] = [];
    const statuses = new Map<number, number>();
    let submitting = true;
    const submitter = (async () => {
      for (let index = 0; submitting; index += 1) {
        try {
          const response = await fetch(`${url}/v1/jobs`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ messages: [{ role: 'user', content: `interactive ${index}` }] }),
            signal: AbortSignal.timeout(15_000),
          });
          statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
          const body = (await response.json()) as { id?: string };
          if (response.status === 202 && body.id) accepted.push(body.id);
        } catch {
          statuses.set(0, (statuses.get(0) ?? 0) + 1); // no answer in time: not accepted
        }
        await sleep(100);
      }
    })();

    await pollUntil(
      () => accepted.length,
      (count) => count >= 3,
      60_000,
    );
    const lines = Array.from({ length: ITEMS }, (_, index) =>
      JSON.stringify({
        custom_id: `item-${index}`,
        method: 'POST',
        url: '/v1/chat/completions',
        body: { model: 'three', messages: [{ role: 'user', content: `batch prompt ${index}` }] },
      }),
    );
    const file = await client.files.create({
      file: await toFile(Buffer.from(`${lines.join('\n')}\n`), 'redis-full.jsonl'),
      purpose: 'batch',
    });
    const batch = await client.batches.create({
      input_file_id: file.id,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
    });

    // Squeeze once the batch is well under way (jobs have been accepted before it).
    const progress = () => admin!.hmget(`${stack!.prefix}:moa-batch:${batch.id}`, 'status', 'completed');
    const before = await pollUntil(
      progress,
      ([status, completed]) => status === 'in_progress' && Number(completed) >= 30,
      120_000,
    );
    expect(Number(before[1])).toBeLessThan(ITEMS);
    const logsAtSqueeze = stack.workers.map((worker) => worker.logs.length);
    const acceptedBefore = accepted.length;
    await admin.config('SET', 'maxmemory', String(Math.floor((await usedMemory(admin)) / 2)));
    const squeezedAt = Date.now();
    // Proof that the squeeze bites: writes are refused.
    await expect(admin.set(`${stack.prefix}:squeeze-probe`, 'x')).rejects.toThrow(/^OOM/);
    await sleep(SQUEEZE_MS);
    const duringSqueeze = await progress();
    await admin.config('SET', 'maxmemory', '0');
    const liftedAt = Date.now();
    const squeezeMs = liftedAt - squeezedAt;
    // Jobs are accepted again after the squeeze, then the stream stops.
    await pollUntil(
      () => accepted.length,
      (count) => count >= acceptedBefore + 3,
      60_000,
    );
    submitting = false;
    await submitter;

    // Every accepted job completes; none is unknown.
    for (const id of accepted) {
      const job = await stack.waitFor(id, 180_000);
      expect({ id, status: job.status }).toEqual({ id, status: 'completed' });
      expect(job.output).toBeTruthy();
    }
    // The batch completes, every item accounted for, the output file complete.
    const done = await pollUntil(
      () => client.batches.retrieve(batch.id),
      (value) => ['completed', 'failed', 'expired', 'cancelled'].includes(value.status),
      240_000,
      250,
    );
    const batchDoneAfterLiftMs = Date.now() - liftedAt;
    expect(done.status).toBe('completed');
    expect(done.request_counts).toEqual({ total: ITEMS, completed: ITEMS, failed: 0 });
    const output = (await (await client.files.content(done.output_file_id!)).text())
      .split('\n')
      .filter((line) => line.trim())
      .map((line) => JSON.parse(line) as OutputLine);
    expect(output).toHaveLength(ITEMS);
    expect(new Set(output.map((line) => line.custom_id))).toEqual(
      new Set(Array.from({ length: ITEMS }, (_, index) => `item-${index}`)),
    );
    expect(output.every((line) => line.error === null && line.response?.status_code === 200)).toBe(true);
    expect(done.error_file_id).toBeNull();

    // Quiet outage: per worker process, the outage is a warning and its end an info line; error-level
    // lines stay a handful however many commands failed (not one per command, poll or job).
    const windows = stack.workers.map((worker, index) => worker.logs.slice(logsAtSqueeze[index]));
    const counts = windows.map((logs) => ({
      error: logs.filter((line) => Number(line.level) >= ERROR).length,
      warn: logs.filter((line) => Number(line.level) === WARN).length,
      unavailable: logs.filter((line) => line.msg === 'redis unavailable: waiting for it to recover').length,
      recovered: logs.filter((line) => line.msg === 'redis available again').length,
    }));
    console.log(
      JSON.stringify({
        squeezeMs,
        batchDoneAfterLiftMs,
        batchBefore: before,
        batchDuringSqueeze: duringSqueeze,
        accepted: accepted.length,
        apiStatuses: Object.fromEntries(statuses),
        workerLogCounts: counts,
        errorLines: windows
          .flatMap((logs) => logs.filter((line) => Number(line.level) >= ERROR))
          .slice(0, 10),
      }),
    );
    for (const count of counts) {
      expect(count.error).toBeLessThanOrEqual(3);
      expect(count.unavailable).toBeGreaterThanOrEqual(1);
      expect(count.unavailable).toBeLessThanOrEqual(2);
      expect(count.recovered).toBe(count.unavailable);
      expect(count.warn).toBeLessThanOrEqual(20);
    }
  }, 600_000);
});

describe('a Redis error inside a processor against a provider fault', () => {
  let server: RedisServerProcess | undefined;
  let admin: Redis | undefined;
  let stack: MoaStack | undefined;
  afterAll(async () => {
    await admin?.config('SET', 'maxmemory', '0').catch(() => undefined);
    admin?.disconnect();
    await stack?.stop();
    await server?.stop();
  });

  it('a Redis error in a call costs it no attempt and the call is made again; a provider 500 costs one', async () => {
    server = await startRedisServer({ appendOnly: false });
    admin = new Redis(server.url, { maxRetriesPerRequest: null });
    stack = await startMoaStack({ name: 'redis-full-call', redisUrl: server.url, workers: 1 });
    const url = await stack.listen();
    // Layer 1's alpha answers 500 once: a provider fault, retried on its second attempt.
    stack.fake.script('alpha', { status: 500 });
    // The aggregator is held until Redis is full, then streams its answer into a full Redis.
    stack.fake.script('aggregator', { hold: true });
    const response = await fetch(`${url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        model: 'three',
        messages: [{ role: 'user', content: 'stream me' }],
        stream: true,
      }),
    });
    const jobId = response.headers.get('x-moa-job-id')!;
    const streamed = response.text();
    await pollUntil(
      () => stack!.fake.held('aggregator'),
      (held) => held === 1,
      60_000,
    );
    const aggregatorJobId = `${jobId}-L3-A0`;
    const worker = stack.workers[0]!;
    await admin.config('SET', 'maxmemory', String(Math.floor((await usedMemory(admin)) / 2)));
    stack.fake.release('aggregator');
    // The cause: its deltas could not be written, so the worker delayed the call (debug line).
    await pollUntil(
      () =>
        worker.logs.some((line) => line.msg === 'redis error: job delayed' && line.jobId === aggregatorJobId),
      (seen) => seen,
      60_000,
    );
    await admin.config('SET', 'maxmemory', '0');

    const job = await stack.waitFor(jobId, 120_000);
    expect(job.status).toBe('completed');
    const [first, , aggregator] = job.layers;
    expect(first!.calls.find((call) => call.model === 'fake/alpha')).toMatchObject({
      status: 'completed',
      attempts: 2,
    });
    // Made again after Redis recovered, on its first attempt still.
    expect(aggregator!.calls[0]).toMatchObject({ status: 'completed', attempts: 1 });
    const aggregatorRequests = stack.fake.requests.filter((entry) => entry.model === 'aggregator');
    expect(aggregatorRequests.length).toBeGreaterThanOrEqual(2);
    // The client got the answer of the run that landed.
    const text = await streamed;
    expect(text).toContain('data: [DONE]');
  }, 300_000);
});

describe('a Redis restart seen from the workers logs', () => {
  let server: RedisServerProcess | undefined;
  let restarted: RedisServerProcess | undefined;
  let stack: MoaStack | undefined;
  afterAll(async () => {
    await stack?.stop();
    await restarted?.stop();
    await server?.stop();
  });

  it('a lost connection is one warning and its recovery one info line per worker, not a line per failed command; moa_redis_up shows it', async () => {
    server = await startRedisServer({ appendOnly: true });
    stack = await startMoaStack({
      name: 'redis-full-restart',
      redisUrl: server.url,
      workers: 2,
      fake: { defaultLatencyMs: 400 },
      workerEnv: { LOG_LEVEL: 'info' },
    });
    const created = await Promise.all(
      Array.from({ length: 12 }, (_, index) =>
        stack!.submit({ messages: [{ role: 'user', content: `restart ${index}` }] }),
      ),
    );
    await pollUntil(
      () => stack!.fake.requests.length,
      (count) => count >= 6,
      60_000,
    );
    const logsAtKill = stack.workers.map((worker) => worker.logs.length);
    expect(await redisUpOfWorkers(stack)).toEqual([1, 1]);
    await server.kill();
    // Each worker's metrics show the outage while it lasts (and answer: they need no Redis).
    await pollUntil(
      () => redisUpOfWorkers(stack!),
      (values) => values.every((value) => value === 0),
      15_000,
      100,
    );
    await sleep(2000);
    restarted = await startRedisServer({ appendOnly: true, port: server.port, directory: server.directory });
    const jobs = await Promise.all(created.map((job) => stack!.waitFor(job.id, 120_000)));
    expect(jobs.map((job) => job.status)).toEqual(Array(12).fill('completed'));
    await pollUntil(
      () => redisUpOfWorkers(stack!),
      (values) => values.every((value) => value === 1),
      60_000,
      100,
    );
    // Each worker has noticed the end of the outage before its lines are counted.
    await pollUntil(
      () =>
        stack!.workers.every((worker, index) => {
          const logs = worker.logs.slice(logsAtKill[index]);
          return (
            logs.filter((line) => line.msg === 'redis available again').length >=
            logs.filter((line) => line.msg === 'redis unavailable: waiting for it to recover').length
          );
        }),
      (done) => done,
      60_000,
    );
    const counts = stack.workers.map((worker, index) => {
      const logs = worker.logs.slice(logsAtKill[index]);
      return {
        lines: logs.length,
        error: logs.filter((line) => Number(line.level) >= ERROR).length,
        warn: logs.filter((line) => Number(line.level) === WARN).length,
        unavailable: logs.filter((line) => line.msg === 'redis unavailable: waiting for it to recover')
          .length,
      };
    });
    console.log(JSON.stringify({ restartLogCounts: counts }));
    for (const count of counts) {
      expect(count.error).toBeLessThanOrEqual(3);
      expect(count.unavailable).toBeGreaterThanOrEqual(1);
      expect(count.unavailable).toBeLessThanOrEqual(2);
      expect(count.warn).toBeLessThanOrEqual(10);
    }
  }, 300_000);
});
