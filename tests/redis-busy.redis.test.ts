import { pollUntil, startRedisServer, type RedisServerProcess } from '@moa-queue/test-support';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { startMoaStack, type MoaStack } from './support/moa-stack.js';
import {
  expectAllCompleted,
  outageStory,
  submitRunningRequests,
  workersSeeRedisUp,
} from './support/worker-outage.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A script that never ends: Redis runs nothing else until it is killed. */
const ENDLESS_SCRIPT = 'while true do end';

/**
 * Redis stuck in a long script (an operator's `EVAL`, a runaway Lua
 * function): past `busy-reply-threshold` every other client's command is
 * answered `BUSY` until the script ends or `SCRIPT KILL` stops it. On a
 * redis-server of this suite's own, the threshold lowered to 200 ms so the
 * refusals start at once.
 */
describe('the workers’ Redis busy in a long script, in the middle of a run', () => {
  let server: RedisServerProcess | undefined;
  let admin: Redis | undefined;
  let runner: Redis | undefined;
  let stack: MoaStack | undefined;
  afterAll(async () => {
    await admin?.call('SCRIPT', 'KILL').catch(() => undefined);
    admin?.disconnect();
    runner?.disconnect();
    await stack?.stop();
    await server?.stop();
  });

  it('loses no request and fails no call: commands refused with BUSY are held until the script is killed', async () => {
    server = await startRedisServer({ appendOnly: false });
    admin = new Redis(server.url, { maxRetriesPerRequest: 0 });
    runner = new Redis(server.url, { maxRetriesPerRequest: 0 });
    await admin.config('SET', 'busy-reply-threshold', '200');
    stack = await startMoaStack({
      name: 'redis-busy',
      redisUrl: server.url,
      workers: 2,
      fake: { defaultLatencyMs: 1500 },
      workerEnv: { LOG_LEVEL: 'info' },
    });
    const created = await submitRunningRequests(stack, 'busy');
    const logsAtBusy = stack.workers.map((worker) => worker.logs.length);

    const endless = runner.eval(ENDLESS_SCRIPT, 0).then(
      () => 'ended',
      (error: Error) => error.message,
    );
    await pollUntil(
      () =>
        admin!.ping().then(
          () => 'PONG',
          (error: Error) => error.message,
        ),
      (answer) => answer.startsWith('BUSY'),
      10_000,
      50,
    );
    await workersSeeRedisUp(stack, 0);
    // Busy for longer than a call: calls finish meanwhile and must wait to be recorded.
    await sleep(4000);
    await admin.call('SCRIPT', 'KILL');
    expect(await endless).toMatch(/Script killed/);

    await expectAllCompleted(stack, created);
    await workersSeeRedisUp(stack, 1);

    const story = stack.workers.map((worker, index) => outageStory(worker, logsAtBusy[index]!));
    console.log(JSON.stringify({ busyLogs: story }));
    for (const worker of story) {
      expect(worker).toMatchObject({ unavailable: 1, recovered: 1, errors: [] });
      expect(worker.seen.some((message) => message.startsWith('BUSY'))).toBe(true);
      expect(worker.warnings).toBeLessThanOrEqual(4);
    }
  }, 300_000);
});
