import { callJobId } from '@moa-queue/contract';
import type { RecordedRequest } from '@moa-queue/fake-provider';
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
    // The straggler is held and never released: only the layer deadline can end its call.
    stack.fake.setBehaviour('slow', { hold: true });
    const job = await stack.waitFor((await stack.submit({ preset: 'deadline', messages: USER })).id);

    expect(job.status).toBe('completed');
    const [alpha, beta, slow] = job.layers[0]!.calls;
    expect(alpha!.status).toBe('completed');
    expect(beta!.status).toBe('completed');
    expect(slow).toMatchObject({ model: 'fake/slow', status: 'failed' });
    expect(slow!.error).toMatchObject({ type: 'timeout_error', code: 'layer_deadline' });
    // The layer waited for its deadline (1 s), a lower bound set by the deadline itself.
    expect(job.layers[0]!.duration_ms).toBeGreaterThanOrEqual(1000);
    // The aggregator saw the two answers that finished.
    const aggregator = stack.fake.requests.find((recorded) => recorded.model === 'aggregator')!;
    expect(systemText(aggregator.messages)).toContain(alpha!.output!);
    // Two references, not three (the tag name may carry a per-request suffix).
    expect(systemText(aggregator.messages)).toMatch(/<reference[^\s>]* index="2">/);
    expect(systemText(aggregator.messages)).not.toMatch(/<reference[^\s>]* index="3">/);
    // The straggler's HTTP call was aborted by the client (499), never answered: it was never released.
    await until(() => stack.fake.requests.find((recorded) => recorded.model === 'slow')?.status === 499);
    expect(stack.fake.held()).toBe(0);
  });

  it('DELETE stops a running request: calls in flight are aborted and no later layer is called', async () => {
    stack.fake.reset();
    for (const model of ['alpha', 'beta', 'gamma']) stack.fake.script(model, { hold: true });
    const created = await stack.submit({ preset: 'three', messages: USER });
    // All three first-layer calls are in flight at the provider, and none can end by itself.
    await until(() => stack.fake.held() === 3);

    const cancelled = await request(stack.app).delete(`/v1/jobs/${created.id}`);
    expect(cancelled.status).toBe(200);
    expect(cancelled.body.status).toBe('cancelled');

    await until(async () => (await stack.get(created.id)).completed_at !== null, 10_000);
    const job = await stack.get(created.id);
    expect(job.status).toBe('cancelled');
    expect(job.error).toMatchObject({ type: 'cancelled' });
    expect(job.output).toBeNull();
    // Nothing was released, so each call ended because the cancel aborted it (499), not by answering.
    await until(() => stack.fake.requests.every((recorded) => recorded.status === 499));
    expect(stack.fake.held()).toBe(0);
    expect(stack.fake.requests.map((recorded) => recorded.model).sort()).toEqual(['alpha', 'beta', 'gamma']);
    // Cancelling again is still a cancelled job; a finished job cannot be cancelled.
    expect((await request(stack.app).delete(`/v1/jobs/${created.id}`)).body.status).toBe('cancelled');
    stack.fake.reset();
    const done = await stack.waitFor((await stack.submit({ preset: 'three', messages: USER })).id);
    const conflict = await request(stack.app).delete(`/v1/jobs/${done.id}`);
    expect(conflict.status).toBe(409);
    expect(conflict.body.error).toMatchObject({ code: 'job_finished' });
  });

  it('DELETE of a request whose calls are all still waiting ends it at once', async () => {
    const FIRST = [{ role: 'user', content: 'First request: why do fan-out requests suffer tail latency?' }];
    const SECOND = [{ role: 'user', content: 'Second request: how do hedged requests cut tail latency?' }];
    const asks = (messages: { content: string }[]) => (recorded: RecordedRequest) =>
      recorded.messages.some((message) => message.content.includes(messages[0]!.content));
    const narrow = stack.queues.llm('narrow');
    const statesOf = (requestId: string) =>
      Promise.all([0, 1, 2, 3, 4, 5].map((index) => narrow.getJobState(callJobId(requestId, 1, index))));

    stack.fake.reset();
    // Every call is held until released. The narrow provider runs 2 calls at a time, so the
    // first request's first two calls take both slots and keep them.
    stack.fake.setBehaviour('*', { hold: true });
    const first = await stack.submit({ preset: 'narrow', messages: FIRST });
    await until(() => stack.fake.held() === 2);
    const second = await stack.submit({ preset: 'narrow', messages: SECOND });
    // All six of the second request's calls are queued behind the held ones: provably waiting.
    await until(async () => (await statesOf(second.id)).every((state) => state === 'waiting'));

    expect((await request(stack.app).delete(`/v1/jobs/${second.id}`)).status).toBe(200);
    await until(async () => (await stack.get(second.id)).completed_at !== null, 10_000);
    // It ended while the first request's calls still held both slots: nothing had been released.
    expect(stack.fake.held()).toBe(2);
    const job = await stack.get(second.id);
    expect(job.status).toBe('cancelled');
    expect(job.output).toBeNull();
    // None of its calls is left to start once the slots free up.
    for (const state of await statesOf(second.id)) {
      expect(['waiting', 'prioritized', 'delayed', 'active']).not.toContain(state);
    }

    // The first request is not disturbed: released, it completes with all six answers.
    stack.fake.setBehaviour('*', undefined);
    expect(stack.fake.release()).toBe(2);
    const firstDone = await stack.waitFor(first.id, 30_000);
    expect(firstDone.status).toBe('completed');
    expect(firstDone.layers[0]!.calls.map((call) => call.status)).toEqual(Array(6).fill('completed'));
    // No call of the cancelled request ever reached the provider.
    expect(stack.fake.requests.filter(asks(SECOND))).toEqual([]);
    expect(stack.fake.requests.filter(asks(FIRST))).toHaveLength(stack.fake.requests.length);
  });
});
