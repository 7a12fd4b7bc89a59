import {
  freePort,
  pollUntil,
  spawnTsProcess,
  startRedisServer,
  uniquePrefix,
  type RedisServerProcess,
  type TsProcess,
} from '@moa-queue/test-support';
import { afterEach, describe, expect, inject, it } from 'vitest';

/**
 * The API process as it starts (apps/api/src/main.ts): it listens at once,
 * before its queues are ready, so that its probes answer even with Redis
 * down. A request in that first moment must not be refused when Redis is
 * fine, and must be refused in bounded time when Redis is down.
 */

const job = { messages: [{ role: 'user', content: 'Starting up?' }] };
let api: TsProcess | undefined;
let redis: RedisServerProcess | undefined;

afterEach(async () => {
  await api?.stop();
  await redis?.stop();
  api = undefined;
  redis = undefined;
});

function startApi(redisUrl: string): TsProcess {
  return spawnTsProcess('apps/api/src/main.ts', {
    REDIS_URL: redisUrl,
    PORT: '0',
    HOST: '127.0.0.1',
    MOA_QUEUE_PREFIX: uniquePrefix('startup'),
    MOA_API_KEYS: '',
    MOA_CONFIG: '',
    LOG_LEVEL: 'info',
  });
}

async function listeningAt(process: TsProcess): Promise<string> {
  const line = await process.waitForLine((entry) => entry.includes('API listening'));
  return `http://127.0.0.1:${(JSON.parse(line) as { port: number }).port}`;
}

async function post(base: string): Promise<{ status: number; code: string | undefined; ms: number }> {
  const started = performance.now();
  const response = await fetch(`${base}/v1/jobs`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(job),
    signal: AbortSignal.timeout(30_000),
  });
  const body = (await response.json()) as { error?: { code: string } };
  return { status: response.status, code: body.error?.code, ms: performance.now() - started };
}

describe('the API as it starts', () => {
  it('serves the requests sent the moment it listens: they wait for its queues, none is refused', async () => {
    // Several starts: the window before the queues are ready is a few milliseconds each.
    for (let start = 0; start < 3; start += 1) {
      api = startApi(inject('redisUrl'));
      const base = await listeningAt(api);
      const answers = await Promise.all(Array.from({ length: 5 }, () => post(base)));
      expect(answers.map((answer) => answer.status)).toEqual([202, 202, 202, 202, 202]);
      await api.stop();
      api = undefined;
    }
  });

  it('with Redis down it listens anyway: probes answer, requests get 503 in bounded time; Redis up: all works', async () => {
    const port = await freePort();
    api = startApi(`redis://127.0.0.1:${port}`);
    const base = await listeningAt(api);
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    expect((await fetch(`${base}/readyz`)).status).toBe(503);
    const refused = await post(base);
    expect({ status: refused.status, code: refused.code }).toEqual({
      status: 503,
      code: 'redis_unavailable',
    });
    // One command timeout (2 s by default), far below the contract's 5 s.
    expect(refused.ms).toBeLessThan(5000);
    const metrics = await fetch(`${base}/metrics`);
    expect(metrics.status).toBe(200);
    expect(await metrics.text()).toMatch(/^moa_redis_up 0$/m);

    redis = await startRedisServer({ port });
    await pollUntil(
      () => fetch(`${base}/readyz`).then((response) => response.status),
      (status) => status === 200,
      30_000,
      100,
    );
    expect((await post(base)).status).toBe(202);
  });
});
