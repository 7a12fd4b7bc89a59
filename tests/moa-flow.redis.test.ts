import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { closingReferenceTag, openingReferenceTag, referenceTagName } from '@moa-queue/moa';
import { FAKE_PRICES, PROVIDER_KEY, startMoaStack, systemText, type MoaStack } from './support/moa-stack.js';

const USER = [{ role: 'user', content: 'Name three uses of a Mixture-of-Agents pipeline.' }];

describe('MoA requests as BullMQ flows across two worker processes', () => {
  let stack: MoaStack;

  beforeAll(async () => {
    stack = await startMoaStack({ name: 'flow', redisUrl: inject('redisUrl'), workers: 2 });
    stack.fake.setBehaviour('dead', { failStatus: 400 });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('runs a 3-layer request with exactly n+n+1 calls, references passed on, and exact cost', async () => {
    stack.fake.reset();
    stack.fake.setBehaviour('dead', { failStatus: 400 });
    const created = await stack.submit({ preset: 'three', messages: USER, metadata: { run: 'flow-1' } });
    expect(created.status).toBe('queued');
    const job = await stack.waitFor(created.id);

    expect(job.status).toBe('completed');
    expect(job.error).toBeNull();
    expect(job.metadata).toEqual({ run: 'flow-1' });
    expect(job.layers.map((layer) => [layer.layer, layer.role, layer.calls.length])).toEqual([
      [1, 'proposer', 3],
      [2, 'proposer', 3],
      [3, 'aggregator', 1],
    ]);
    expect(stack.fake.requests).toHaveLength(3 + 3 + 1);

    const outputs = (layer: number) => job.layers[layer - 1]!.calls.map((call) => call.output!);
    const layer1Requests = stack.fake.requests.filter((request) => systemText(request.messages) === '');
    const layer2Requests = stack.fake.requests.filter(
      (request) => request.model !== 'aggregator' && systemText(request.messages) !== '',
    );
    const aggregatorRequests = stack.fake.requests.filter((request) => request.model === 'aggregator');
    expect(layer1Requests).toHaveLength(3);
    expect(layer2Requests).toHaveLength(3);
    expect(aggregatorRequests).toHaveLength(1);
    const tagName = referenceTagName(outputs(1));
    for (const request of layer2Requests) {
      const system = systemText(request.messages);
      outputs(1).forEach((output, index) => {
        expect(system).toContain(
          `${openingReferenceTag(tagName, index + 1)}\n${output}\n${closingReferenceTag(tagName)}`,
        );
      });
    }
    const aggregatorSystem = systemText(aggregatorRequests[0]!.messages);
    for (const output of outputs(2)) expect(aggregatorSystem).toContain(output);
    expect(job.output).toBe(job.layers[2]!.calls[0]!.output);

    let promptTokens = 0;
    let completionTokens = 0;
    let cost = 0;
    for (const call of job.layers.flatMap((layer) => layer.calls)) {
      const price = FAKE_PRICES[call.model as keyof typeof FAKE_PRICES];
      const expected =
        (call.usage.prompt_tokens * price.inputCostPerMTok +
          call.usage.completion_tokens * price.outputCostPerMTok) /
        1e6;
      expect(call.cost_usd).toBeCloseTo(expected, 15);
      expect(call.status).toBe('completed');
      expect(call.attempts).toBe(1);
      expect(call.latency_ms).toBeGreaterThanOrEqual(20);
      promptTokens += call.usage.prompt_tokens;
      completionTokens += call.usage.completion_tokens;
      cost += call.cost_usd!;
    }
    expect(job.usage).toEqual({
      prompt_tokens: promptTokens,
      completion_tokens: completionTokens,
      total_tokens: promptTokens + completionTokens,
    });
    expect(job.cost_usd).toBeCloseTo(cost, 15);
    expect(job.completed_at).toBeGreaterThanOrEqual(job.created_at);
    // The provider key reached the provider, and nowhere else.
    expect(stack.fake.requests.every((request) => request.authorization === `Bearer ${PROVIDER_KEY}`)).toBe(
      true,
    );
  });

  it('spreads calls over both workers and keeps secrets out of logs and job data', async () => {
    const created = await Promise.all(
      Array.from({ length: 8 }, (_, index) =>
        stack.submit({ messages: [{ role: 'user', content: `question ${index}` }] }),
      ),
    );
    const jobs = await Promise.all(created.map((job) => stack.waitFor(job.id)));
    expect(jobs.map((job) => job.status)).toEqual(Array(8).fill('completed'));
    const callsPerWorker = stack.workers.map(
      (worker) => worker.logs.filter((line) => line.msg === 'call completed').length,
    );
    expect(callsPerWorker.every((count) => count > 0)).toBe(true);
    for (const worker of stack.workers) {
      expect(worker.lines.some((line) => line.includes(PROVIDER_KEY))).toBe(false);
    }
    const stored = await stack.queues.requests.getJob(created[0]!.id);
    expect(JSON.stringify(stored?.data)).not.toContain(PROVIDER_KEY);
    // Log lines about a job carry its request id, layer, model and attempt.
    const callLine = stack.workers
      .flatMap((worker) => worker.logs)
      .find((line) => line.msg === 'call completed');
    expect(callLine).toMatchObject({ requestId: expect.stringMatching(/^job_/), layer: expect.any(Number) });
    expect(callLine).toHaveProperty('model');
    expect(callLine).toHaveProperty('attempt');
  });

  it('tolerates one dead proposer and reports it', async () => {
    stack.fake.reset();
    stack.fake.setBehaviour('dead', { failStatus: 400 });
    const job = await stack.waitFor((await stack.submit({ preset: 'one-dead', messages: USER })).id);
    expect(job.status).toBe('completed');
    const dead = job.layers[0]!.calls[1]!;
    expect(dead).toMatchObject({ model: 'fake/dead', status: 'failed', output: null, attempts: 1 });
    expect(dead.error).toMatchObject({ type: 'invalid_request_error' });
    expect(dead.usage).toEqual({ prompt_tokens: 0, completion_tokens: 0 });
    // Layer 2 saw the two answers that exist, numbered 1 and 2.
    const layer2 = stack.fake.requests.filter(
      (request) => request.model !== 'aggregator' && systemText(request.messages) !== '',
    );
    expect(layer2).toHaveLength(2);
    for (const request of layer2) {
      const system = systemText(request.messages);
      expect(system).toContain(job.layers[0]!.calls[0]!.output!);
      expect(system).toContain(job.layers[0]!.calls[2]!.output!);
      // The pattern matches the second block, so its absence for a third one is meaningful.
      expect(system).toMatch(/<reference-[0-9a-f]{8} index="2">/);
      expect(system).not.toMatch(/<reference-[0-9a-f]{8} index="3">/);
    }
  });

  it('fails a request clearly when every proposer of a layer is dead', async () => {
    stack.fake.reset();
    stack.fake.setBehaviour('dead', { failStatus: 400 });
    const job = await stack.waitFor((await stack.submit({ preset: 'all-dead', messages: USER })).id);
    expect(job.status).toBe('failed');
    expect(job.output).toBeNull();
    expect(job.error).toMatchObject({ type: 'moa_error', code: 'too_few_proposers' });
    expect(job.error!.message).toContain('layer 1: 0 of 2 proposer calls succeeded');
    expect(job.error!.message).toContain('minProposers');
    expect(job.layers).toHaveLength(1);
    expect(job.layers[0]!.calls.every((call) => call.status === 'failed')).toBe(true);
    expect(stack.fake.requests.some((request) => request.model === 'aggregator')).toBe(false);
  });

  it('retries a server error and records the attempts', async () => {
    stack.fake.reset();
    stack.fake.script('alpha', { status: 500 });
    const job = await stack.waitFor((await stack.submit({ preset: 'three', messages: USER })).id);
    expect(job.status).toBe('completed');
    const alphaCalls = job.layers
      .flatMap((layer) => layer.calls)
      .filter((call) => call.model === 'fake/alpha');
    expect(alphaCalls.map((call) => call.attempts).sort()).toEqual([1, 2]);
  });

  it('a retried orchestrator repeats no finished call', async () => {
    stack.fake.reset();
    const first = await stack.waitFor((await stack.submit({ preset: 'three', messages: USER })).id);
    expect(first.status).toBe('completed');
    const callsBefore = stack.fake.requests.length;
    expect(callsBefore).toBe(7);

    // Run it again. Its calls' own results went with its end (each answer is stored once):
    // what it has is its stored layers, which BullMQ's retry keeps.
    const job = await stack.queues.requests.getJob(first.id);
    expect(await stack.queues.llm('fake').getJobCounts('completed')).toEqual({ completed: 0 });
    await job!.retry('completed');
    const again = await stack.waitFor(first.id);
    expect(again.status).toBe('completed');
    expect(stack.fake.requests.length).toBe(callsBefore);
    expect(again.output).toBe(first.output);
    expect(again.cost_usd).toBeCloseTo(first.cost_usd!, 15);
  });
});
