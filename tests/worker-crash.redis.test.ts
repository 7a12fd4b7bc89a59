import { until } from '@moa-queue/test-support';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { startMoaStack, systemText, type MoaStack } from './support/moa-stack.js';

const USER = [{ role: 'user', content: 'Why do queues need stalled-job detection?' }];
const PROPOSERS = ['alpha', 'beta', 'gamma'];

describe('worker crashes and shutdowns lose no request and repeat no finished call', () => {
  let stack: MoaStack | undefined;
  afterEach(async () => {
    await stack?.stop();
    stack = undefined;
  });

  it('SIGKILL during layer 2: another worker finishes the request without repeating layer 1', async () => {
    stack = await startMoaStack({ name: 'crash', redisUrl: inject('redisUrl'), workers: 1 });
    // Layer 1 answers fast; layer 2 is still in flight when the worker dies.
    for (const model of PROPOSERS) stack.fake.script(model, { latencyMs: 10 }, { latencyMs: 4000 });
    const created = await stack.submit({ preset: 'three', messages: USER });
    await until(() => stack!.fake.requests.length >= 6);
    const [victim] = stack.workers;
    await victim!.stop('SIGKILL');
    await stack.startWorker();

    const job = await stack.waitFor(created.id, 30_000);
    expect(job.status).toBe('completed');
    const layer1 = stack.fake.requests.filter((request) => systemText(request.messages) === '');
    expect(layer1).toHaveLength(3);
    // The killed layer-2 calls were unfinished: they ran again, and only they did.
    const layer2 = stack.fake.requests.filter(
      (request) => request.model !== 'aggregator' && systemText(request.messages) !== '',
    );
    expect(layer2.filter((request) => request.status === 200)).toHaveLength(3);
    expect(layer2.length).toBeLessThanOrEqual(6);
    expect(stack.fake.requests.filter((request) => request.model === 'aggregator')).toHaveLength(1);
  });

  it('SIGTERM lets in-flight calls finish, exits 0, and the next worker carries on', async () => {
    stack = await startMoaStack({ name: 'sigterm', redisUrl: inject('redisUrl'), workers: 1 });
    for (const model of PROPOSERS) stack.fake.script(model, { latencyMs: 1500 });
    const created = await stack.submit({ preset: 'three', messages: USER });
    await until(() => stack!.fake.requests.length >= 3);
    const exit = await stack.workers[0]!.stop('SIGTERM');
    expect(exit.code).toBe(0);
    // Every call that was in flight was answered, not abandoned.
    expect(stack.fake.requests.slice(0, 3).map((request) => request.status)).toEqual([200, 200, 200]);

    await stack.startWorker();
    const job = await stack.waitFor(created.id, 30_000);
    expect(job.status).toBe('completed');
    expect(stack.fake.requests.filter((request) => systemText(request.messages) === '')).toHaveLength(3);
    expect(stack.fake.requests).toHaveLength(7);
  });

  it('SIGKILL of one of two workers during a run of dozens of requests: every request completes', async () => {
    stack = await startMoaStack({
      name: 'crash-many',
      redisUrl: inject('redisUrl'),
      workers: 2,
      fake: { defaultLatencyMs: 150 },
    });
    const created = await Promise.all(
      Array.from({ length: 30 }, (_, index) =>
        stack!.submit({ preset: 'three', messages: [{ role: 'user', content: `crash run ${index}` }] }),
      ),
    );
    await until(() => stack!.fake.requests.length >= 60);
    const killedAt = Date.now();
    await stack.workers[0]!.stop('SIGKILL');
    const jobs = await Promise.all(created.map((job) => stack!.waitFor(job.id, 60_000)));
    expect(jobs.map((job) => job.status)).toEqual(Array(30).fill('completed'));
    for (const job of jobs) expect(job.layers.map((layer) => layer.calls.length)).toEqual([3, 3, 1]);
    // Only calls that were unfinished when the worker died can have been made again: those in
    // flight when the kill was sent, and those the dying worker sent before the signal landed,
    // which the fake saw cut off (499) when its process went away.
    const inFlightAtKill = stack.fake.requests.filter(
      (recorded) =>
        recorded.status === 499 ||
        (recorded.receivedAt <= killedAt && (recorded.finishedAt ?? Infinity) >= killedAt),
    ).length;
    expect(stack.fake.requests.filter((recorded) => recorded.status === 200).length).toBeGreaterThanOrEqual(
      30 * 7,
    );
    expect(stack.fake.requests.length).toBeLessThanOrEqual(30 * 7 + inFlightAtKill);
  });
});
