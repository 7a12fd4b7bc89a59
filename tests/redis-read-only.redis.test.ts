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

/** Redis's `INFO replication` as a map. */
async function replication(redis: Redis): Promise<Record<string, string>> {
  const info = await redis.info('replication');
  return Object.fromEntries(
    info
      .split('\r\n')
      .filter((line) => line.includes(':'))
      .map((line) => [line.slice(0, line.indexOf(':')), line.slice(line.indexOf(':') + 1)]),
  );
}

/** `FAILOVER TO` the replica on `port`, then waits until the primary has handed over. */
async function failover(primary: Redis, port: number): Promise<void> {
  await primary.call('FAILOVER', 'TO', '127.0.0.1', String(port), 'TIMEOUT', '10000');
  await pollUntil(
    () => replication(primary),
    (info) => info.master_failover_state === 'no-failover' && info.role === 'slave',
    30_000,
    100,
  );
}

/**
 * A failover seen from the old primary: the Redis the workers are connected
 * to becomes a replica (of the server that took over, which has the same
 * data), so every write it gets is refused with `READONLY` while reads go on;
 * then it is promoted back. Real servers and real replication: two
 * redis-server processes of this suite's own, the roles swapped with
 * Redis's own coordinated `FAILOVER` (writes paused until the replica has
 * caught up), so nothing is lost either way.
 */
describe('the workers’ Redis turned read-only (a failover away and back) in the middle of a run', () => {
  let primary: RedisServerProcess | undefined;
  let standby: RedisServerProcess | undefined;
  let primaryAdmin: Redis | undefined;
  let standbyAdmin: Redis | undefined;
  let stack: MoaStack | undefined;
  afterAll(async () => {
    await primaryAdmin?.replicaof('NO', 'ONE').catch(() => undefined);
    primaryAdmin?.disconnect();
    standbyAdmin?.disconnect();
    await stack?.stop();
    await primary?.stop();
    await standby?.stop();
  });

  it('loses no request and fails no call: writes refused with READONLY are held until Redis is writable again', async () => {
    primary = await startRedisServer({ appendOnly: false });
    standby = await startRedisServer({ appendOnly: false });
    primaryAdmin = new Redis(primary.url, { maxRetriesPerRequest: 0 });
    standbyAdmin = new Redis(standby.url, { maxRetriesPerRequest: 0 });
    await standbyAdmin.replicaof('127.0.0.1', primary.port);
    await pollUntil(
      () => replication(standbyAdmin!),
      (info) => info.master_link_status === 'up',
      30_000,
      100,
    );

    stack = await startMoaStack({
      name: 'redis-readonly',
      redisUrl: primary.url,
      workers: 2,
      fake: { defaultLatencyMs: 1500 },
      workerEnv: { LOG_LEVEL: 'info' },
    });
    const created = await submitRunningRequests(stack, 'read-only');
    const logsAtFailover = stack.workers.map((worker) => worker.logs.length);

    // Failover away, as Redis coordinates it (FAILOVER): writes paused until the standby has
    // every one, then the roles swap and the old primary follows the new one. Nothing is lost.
    await failover(primaryAdmin, standby.port);
    await pollUntil(
      () => replication(primaryAdmin!),
      (info) => info.role === 'slave' && info.master_link_status === 'up',
      30_000,
      100,
    );
    await expect(primaryAdmin.set('readonly-probe', '1')).rejects.toThrow(/^READONLY/);
    // Each worker sees its writes refused and says so on its metrics port.
    await workersSeeRedisUp(stack, 0);
    // Read-only for longer than a call: calls finish meanwhile and must wait to be recorded.
    await sleep(4000);

    // And back the same way: the old primary takes its role again.
    await failover(standbyAdmin, primary.port);
    await pollUntil(
      () => replication(primaryAdmin!),
      (info) => info.role === 'master',
      30_000,
      100,
    );

    await expectAllCompleted(stack, created);
    await workersSeeRedisUp(stack, 1);

    const story = stack.workers.map((worker, index) => outageStory(worker, logsAtFailover[index]!));
    console.log(JSON.stringify({ readOnlyLogs: story }));
    for (const worker of story) {
      expect(worker).toMatchObject({ unavailable: 1, recovered: 1, errors: [] });
      // Writes refused as READONLY; blocked reads (BZPOPMIN) cut off as UNBLOCKED when the role changed.
      expect(worker.seen.some((message) => message.startsWith('READONLY'))).toBe(true);
      expect(worker.warnings).toBeLessThanOrEqual(4);
    }
  }, 300_000);
});
