import {
  pollUntil,
  spawnTsProcess,
  startRedisServer,
  uniquePrefix,
  type RedisServerProcess,
  type TsProcess,
} from '@moa-queue/test-support';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * Redis faults against a real API process (apps/api/src/main.ts, default
 * settings: 2 s command timeout) on a redis-server of this suite's own, so
 * pausing, killing and squeezing it disturbs no other suite. DESIGN §4:
 * while Redis is unreachable, full or slow, requests answer 503 with
 * `Retry-After` (`redis_unavailable` / `redis_full`) within 5 s, and
 * `/readyz` is 503, while `/metrics` answers 200 with `moa_redis_up 0`;
 * afterwards everything works again.
 */

/** The contract's bound on an answer while Redis misbehaves. */
const ANSWER_WITHIN_MS = 5000;

let redis: RedisServerProcess;
let restarted: RedisServerProcess | undefined;
let api: TsProcess;
let base: string;
let admin: Redis;

interface Timed {
  status: number;
  ms: number;
  headers: Headers;
  body: { error?: { code: string; type: string; message: string; param: null | string } } & Record<
    string,
    unknown
  >;
}

async function call(method: 'GET' | 'POST', path: string, body?: unknown): Promise<Timed> {
  const started = performance.now();
  const response = await fetch(`${base}${path}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
    // Far past the contract: a hang shows as a failed bound below, not as a stuck suite.
    signal: AbortSignal.timeout(30_000),
  });
  const text = await response.text();
  return {
    status: response.status,
    ms: performance.now() - started,
    headers: response.headers,
    body: text ? (JSON.parse(text) as Timed['body']) : {},
  };
}

const job = { messages: [{ role: 'user', content: 'Redis trouble?' }] };

function expect503(answer: Timed, code: 'redis_unavailable' | 'redis_full'): void {
  expect({ status: answer.status, code: answer.body.error?.code }).toEqual({ status: 503, code });
  expect(answer.ms).toBeLessThan(ANSWER_WITHIN_MS);
  expect(Number(answer.headers.get('retry-after'))).toBeGreaterThan(0);
  expect(answer.headers.get('x-should-retry')).toBe('true');
  expect(answer.body.error).toMatchObject({ type: 'server_error', param: null });
}

/** `GET /metrics` while Redis misbehaves: 200 within the bound, with what the process knows. */
async function scrape(): Promise<{ ms: number; redisUp: number; jobCounts: number; served503: number }> {
  const started = performance.now();
  const response = await fetch(`${base}/metrics`, { signal: AbortSignal.timeout(30_000) });
  const text = await response.text();
  expect(response.status).toBe(200);
  const lines = text.split('\n');
  return {
    ms: performance.now() - started,
    redisUp: Number(/^moa_redis_up (\S+)$/m.exec(text)?.[1]),
    jobCounts: lines.filter((line) => line.startsWith('bullmq_job_count{')).length,
    served503: lines
      .filter((line) => line.startsWith('moa_http_requests_total{') && line.includes('status="503"'))
      .reduce((sum, line) => sum + Number(line.split(' ').at(-1)), 0),
  };
}

/** What a scrape shows while Redis does not serve: the outage and its 503s, no stale queue counts. */
async function expectOutageScrape(): Promise<void> {
  const during = await scrape();
  expect(during.ms).toBeLessThan(ANSWER_WITHIN_MS);
  expect({ redisUp: during.redisUp, jobCounts: during.jobCounts }).toEqual({ redisUp: 0, jobCounts: 0 });
  expect(during.served503).toBeGreaterThan(0);
}

/** After an outage: Redis serves (once the health watch has seen it) and the queue counts are back. */
async function expectRecoveredScrape(): Promise<void> {
  const after = await pollUntil(scrape, (answer) => answer.redisUp === 1, 15_000, 100);
  // One series per queue and state.
  expect(after.jobCounts).toBeGreaterThan(0);
}

async function waitReady(timeoutMs = 20_000): Promise<void> {
  await pollUntil(
    () => call('GET', '/readyz').catch(() => undefined),
    (answer) => answer?.status === 200,
    timeoutMs,
    100,
  );
}

function logsWith(message: string): Record<string, unknown>[] {
  return api.logs.filter((line) => typeof line.msg === 'string' && line.msg.startsWith(message));
}

/** Waits until the API has logged `count` recoveries: one outage is over before the next starts. */
async function recoveries(count: number): Promise<void> {
  await pollUntil(
    () => logsWith('redis available again').length,
    (seen) => seen >= count,
    15_000,
    100,
  );
}

beforeAll(async () => {
  redis = await startRedisServer({ appendOnly: true });
  admin = new Redis(redis.url, { maxRetriesPerRequest: 0, retryStrategy: () => 200 });
  admin.on('error', () => undefined);
  api = spawnTsProcess('apps/api/src/main.ts', {
    REDIS_URL: redis.url,
    PORT: '0',
    HOST: '127.0.0.1',
    MOA_QUEUE_PREFIX: uniquePrefix('redis-faults'),
    MOA_API_KEYS: '',
    MOA_CONFIG: '',
    LOG_LEVEL: 'info',
  });
  const listening = await api.waitForLine((line) => line.includes('API listening'));
  base = `http://127.0.0.1:${(JSON.parse(listening) as { port: number }).port}`;
  await waitReady();
});

afterAll(async () => {
  await api?.stop();
  admin?.disconnect();
  await restarted?.stop();
  if (redis?.process.exitCode === null && redis.process.signalCode === null) {
    redis.process.kill('SIGCONT');
    await redis.stop();
  }
});

describe('the API while Redis is paused, killed, full or busy (real process, own redis-server)', () => {
  let existing: string;

  it('Redis paused (SIGSTOP) for 10 s: POST /v1/jobs, GET /v1/jobs/{id} and /readyz answer 503 redis_unavailable within 5 s; then all resumes', async () => {
    const created = await call('POST', '/v1/jobs', job);
    expect(created.status).toBe(202);
    existing = created.body.id as string;

    redis.process.kill('SIGSTOP');
    const pausedAt = Date.now();
    try {
      expect503(await call('POST', '/v1/jobs', job), 'redis_unavailable');
      expect503(await call('GET', `/v1/jobs/${existing}`), 'redis_unavailable');
      expect503(await call('GET', '/readyz'), 'redis_unavailable');
      // Concurrent requests too: each is bounded on its own.
      const together = await Promise.all([
        call('POST', '/v1/jobs', job),
        call('GET', `/v1/jobs/${existing}`),
        call('GET', '/readyz'),
      ]);
      for (const answer of together) expect503(answer, 'redis_unavailable');
      await expectOutageScrape();
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, 10_000 - (Date.now() - pausedAt))));
    } finally {
      redis.process.kill('SIGCONT');
    }

    await waitReady();
    const after = await call('POST', '/v1/jobs', job);
    expect(after.status).toBe(202);
    expect((await call('GET', `/v1/jobs/${after.body.id as string}`)).status).toBe(200);
    const old = await call('GET', `/v1/jobs/${existing}`);
    expect(old.status).toBe(200);
    expect(old.body.id).toBe(existing);
    await recoveries(1);
    await expectRecoveredScrape();
  });

  it('Redis killed: 503 redis_unavailable at once; restarted on the same port: the API recovers with its data', async () => {
    await redis.kill();
    expect503(await call('POST', '/v1/jobs', job), 'redis_unavailable');
    expect503(await call('GET', `/v1/jobs/${existing}`), 'redis_unavailable');
    expect503(await call('GET', '/readyz'), 'redis_unavailable');
    // A few seconds down: reconnect attempts pile up, but are not logged one by one.
    await new Promise((resolve) => setTimeout(resolve, 3000));
    expect503(await call('POST', '/v1/jobs', job), 'redis_unavailable');
    await expectOutageScrape();

    restarted = await startRedisServer({ appendOnly: true, port: redis.port, directory: redis.directory });
    await waitReady();
    expect((await call('POST', '/v1/jobs', job)).status).toBe(202);
    expect((await call('GET', `/v1/jobs/${existing}`)).status).toBe(200);
    await recoveries(2);
    await expectRecoveredScrape();
  });

  it('Redis full (maxmemory 1, noeviction): POST answers 503 redis_full and /readyz 503 while reads go on; lifted: 202', async () => {
    await pollUntil(
      () => admin.ping().catch(() => 'not yet'),
      (answer) => answer === 'PONG',
      10_000,
      100,
    );
    await admin.config('SET', 'maxmemory-policy', 'noeviction');
    await admin.config('SET', 'maxmemory', '1');
    try {
      expect503(await call('POST', '/v1/jobs', job), 'redis_full');
      const ready = await call('GET', '/readyz');
      expect503(ready, 'redis_full');
      expect(ready.headers.get('retry-after')).toBe('5');
      // Reads need no memory: an existing job stays readable.
      expect((await call('GET', `/v1/jobs/${existing}`)).status).toBe(200);
      // The health watch (a probe every 5 s) notices, and says so once.
      await api.waitForLine((line) => line.includes('redis unavailable') && line.includes('OOM'), 15_000);
      // Reads work, so the queue counts are there; writes do not, so Redis does not serve.
      const full = await scrape();
      expect({ redisUp: full.redisUp, hasJobCounts: full.jobCounts > 0 }).toEqual({
        redisUp: 0,
        hasJobCounts: true,
      });
    } finally {
      await admin.config('SET', 'maxmemory', '0');
    }
    await waitReady();
    expect((await call('POST', '/v1/jobs', job)).status).toBe(202);
    await recoveries(3);
    await expectRecoveredScrape();
  });

  it('Redis busy in an endless script: 503 redis_unavailable (BUSY) within 5 s, /metrics 200; after SCRIPT KILL all resumes', async () => {
    await admin.config('SET', 'busy-reply-threshold', '200');
    // The restarted server listens where the first one did.
    const runner = new Redis(redis.url, { maxRetriesPerRequest: 0 });
    try {
      const endless = runner.eval('while true do end', 0).then(
        () => 'ended',
        (error: Error) => error.message,
      );
      await pollUntil(
        () =>
          admin.ping().then(
            () => 'PONG',
            (error: Error) => error.message,
          ),
        (answer) => answer.startsWith('BUSY'),
        10_000,
        50,
      );
      expect503(await call('POST', '/v1/jobs', job), 'redis_unavailable');
      expect503(await call('GET', `/v1/jobs/${existing}`), 'redis_unavailable');
      expect503(await call('GET', '/readyz'), 'redis_unavailable');
      await expectOutageScrape();
      await admin.call('SCRIPT', 'KILL');
      expect(await endless).toMatch(/Script killed/);
    } finally {
      runner.disconnect();
    }
    await waitReady();
    expect((await call('POST', '/v1/jobs', job)).status).toBe(202);
    expect((await call('GET', `/v1/jobs/${existing}`)).status).toBe(200);
    await recoveries(4);
    await expectRecoveredScrape();
  });

  it('logged each outage once (warn) and each recovery once (info), never at error level', async () => {
    const story = api.logs
      .filter((line) => typeof line.msg === 'string' && /^redis (unavailable|still|available)/.test(line.msg))
      .map((line) => [line.level, line.msg, line.redis]);
    const down = [40, 'redis unavailable: waiting for it to recover', 'api'];
    const up = [30, 'redis available again', 'api'];
    expect(story).toEqual([down, up, down, up, down, up, down, up]);
    const full = logsWith('redis unavailable')[2];
    expect(String(full?.error)).toMatch(/^OOM command not allowed/);
    const busy = logsWith('redis unavailable')[3];
    expect(String(busy?.error)).toMatch(/^BUSY/);
    // Requests answered 503: a summary at warn, not a line (or a stack) per request.
    expect(logsWith('requests answered 503').length).toBeLessThanOrEqual(2);
    expect(api.logs.filter((line) => Number(line.level) >= 50)).toEqual([]);
    expect(api.lines.filter((line) => line.includes('Unhandled error event'))).toEqual([]);
  });
});
