import { until } from '@moa-queue/test-support';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import request from 'supertest';
import { startMoaStack, systemText, type MoaStack } from './support/moa-stack.js';

const USER = [{ role: 'user', content: 'Summarise the tail-latency problem of fan-out requests.' }];

describe('layer deadlines and cancellation in the distributed path', () => {
  let stack: MoaStack;
  beforeAll(async () => {
    stack = await startMoaStack({ name: 'deadline', redisUrl: inject('redisUrl'), workers: 2 });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('a straggler is cut at the layer deadline and the layer proceeds with the calls that finished', async () => {
    stack.fake.reset();
    stack.fake.setBehaviour('slow', { latencyMs: 20_000 });
    const started = Date.now();
    const job = await stack.waitFor((await stack.submit({ preset: 'deadline', messages: USER })).id);
    const elapsed = Date.now() - started;

    expect(job.status).toBe('completed');
    const [alpha, beta, slow] = job.layers[0]!.calls;
    expect(alpha!.status).toBe('completed');
    expect(beta!.status).toBe('completed');
    expect(slow).toMatchObject({ model: 'fake/slow', status: 'failed' });
    expect(slow!.error).toMatchObject({ type: 'timeout_error', code: 'layer_deadline' });
    // The layer waited for its deadline, and not for the straggler's 20 s.
    expect(job.layers[0]!.duration_ms).toBeGreaterThanOrEqual(1000);
    expect(elapsed).toBeLessThan(20_000);
    // The aggregator saw the two answers that finished.
    const aggregator = stack.fake.requests.find((recorded) => recorded.model === 'aggregator')!;
    expect(systemText(aggregator.messages)).toContain(alpha!.output!);
    expect(systemText(aggregator.messages)).not.toContain('<reference index="3">');
    // The straggler's HTTP call was aborted, not left running.
    await until(() => stack.fake.requests.find((recorded) => recorded.model === 'slow')?.status === 499);
  });

  it('DELETE stops a running request: calls in flight are aborted and no later layer is called', async () => {
    stack.fake.reset();
    for (const model of ['alpha', 'beta', 'gamma']) stack.fake.script(model, { latencyMs: 15_000 });
    const created = await stack.submit({ preset: 'three', messages: USER });
    await until(() => stack.fake.requests.length >= 3);

    const cancelled = await request(stack.app).delete(`/v1/jobs/${created.id}`);
    expect(cancelled.status).toBe(200);
    expect(cancelled.body.status).toBe('cancelled');

    await until(async () => (await stack.get(created.id)).completed_at !== null, 10_000);
    const job = await stack.get(created.id);
    expect(job.status).toBe('cancelled');
    expect(job.error).toMatchObject({ type: 'cancelled' });
    expect(job.output).toBeNull();
    await until(() => stack.fake.requests.every((recorded) => recorded.status === 499));
    expect(stack.fake.requests).toHaveLength(3);
    // Cancelling again is still a cancelled job; a finished job cannot be cancelled.
    expect((await request(stack.app).delete(`/v1/jobs/${created.id}`)).body.status).toBe('cancelled');
    stack.fake.reset();
    const done = await stack.waitFor((await stack.submit({ preset: 'three', messages: USER })).id);
    const conflict = await request(stack.app).delete(`/v1/jobs/${done.id}`);
    expect(conflict.status).toBe(409);
    expect(conflict.body.error).toMatchObject({ code: 'job_finished' });
  });

  it('DELETE of a request whose calls are all still waiting ends it at once', async () => {
    stack.fake.reset();
    // The narrow provider runs 2 calls at a time: the first request's slow calls hold both slots.
    for (let index = 1; index <= 6; index += 1) stack.fake.script(`lane-${index}`, { latencyMs: 3000 });
    const first = await stack.submit({ preset: 'narrow', messages: USER });
    await until(() => stack.fake.requests.length >= 2);
    const second = await stack.submit({ preset: 'narrow', messages: USER });
    await until(async () => (await stack.get(second.id)).status === 'running');
    const requestsBefore = stack.fake.requests.length;

    expect((await request(stack.app).delete(`/v1/jobs/${second.id}`)).status).toBe(200);
    await until(async () => (await stack.get(second.id)).completed_at !== null, 10_000);
    // It ended while the first request's slow calls still held both slots (an ordering, not a budget).
    expect(stack.fake.requests.slice(0, 2).every((recorded) => recorded.finishedAt === undefined)).toBe(true);
    const job = await stack.get(second.id);
    expect(job.status).toBe('cancelled');
    // None of the second request's calls reached the provider after the cancel.
    const firstDone = await stack.waitFor(first.id, 30_000);
    expect(firstDone.status).toBe('completed');
    expect(stack.fake.requests.length - requestsBefore).toBeLessThanOrEqual(6 + 1);
  });
});
