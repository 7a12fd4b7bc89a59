import OpenAI from 'openai';
import { afterAll, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';
import { eventsKey } from '@moa-queue/contract';
import { cutReferenceNote } from '@moa-queue/moa';
import { pollUntil } from '@moa-queue/test-support';
import request from 'supertest';
import type { ConsoleJob } from '../apps/api/src/console/job-timeline.js';
import { FAKE_PRICES, startMoaStack, systemText, type MoaStack } from './support/moa-stack.js';

const USER = [{ role: 'user', content: 'Name three uses of a Mixture-of-Agents pipeline.' }];
/** Three proposers answering 400 lorem words each (~475 tokens): with the prompt and max_tokens 512, more than a 2,000-token window holds. */
const PROPOSERS = ['fake/alpha', 'fake/beta', 'fake/gamma'].map((model) => ({ model, maxTokens: 600 }));

describe('context budgets across the queue (worker + fake provider enforcing windows)', () => {
  let stack: MoaStack;

  beforeAll(async () => {
    stack = await startMoaStack({
      name: 'context',
      redisUrl: inject('redisUrl'),
      workers: 1,
      fake: { outputWords: 400 },
      configure: (file) => ({
        ...file,
        models: {
          ...FAKE_PRICES,
          // Configured as the fake enforces it.
          'fake/small-window': { inputCostPerMTok: 1, outputCostPerMTok: 1, contextWindow: 2000 },
          // Configured larger than the fake enforces: the provider has the last word.
          'fake/over-claimed': { inputCostPerMTok: 1, outputCostPerMTok: 1, contextWindow: 32_768 },
        },
        presets: {
          ...(file.presets as Record<string, unknown>),
          budget: { layers: [PROPOSERS], aggregator: { model: 'fake/small-window', maxTokens: 512 } },
          'over-claimed': { layers: [PROPOSERS], aggregator: { model: 'fake/over-claimed', maxTokens: 512 } },
          unsent: {
            layers: [[{ model: 'fake/small-window' }, { model: 'fake/small-window' }]],
            aggregator: { model: 'fake/alpha' },
          },
        },
      }),
    });
  });
  afterAll(async () => {
    await stack?.stop();
  });
  beforeEach(() => {
    stack.fake.reset();
    stack.fake.setContextWindow('small-window', 2000);
    stack.fake.setContextWindow('over-claimed', 2000);
  });

  const requestsTo = (model: string) => stack.fake.requests.filter((request) => request.model === model);

  it("completes with shortened references when they would overflow the aggregator's window", async () => {
    const job = await stack.waitFor((await stack.submit({ preset: 'budget', messages: USER })).id);
    expect(job.status).toBe('completed');
    const aggregator = job.layers[1]!.calls[0]!;
    expect(aggregator.status).toBe('completed');
    expect(aggregator.references_cut.map((cut) => cut.agent_index)).toEqual([0, 1, 2]);
    for (const cut of aggregator.references_cut) {
      expect(cut.kept_tokens).toBeLessThan(cut.original_tokens);
      expect(cut.kept_tokens).toBeGreaterThan(0);
    }
    expect(aggregator.max_tokens_lowered).toBeNull();
    expect(aggregator.references_halved).toBe(false);
    // Proposer calls were sent as built.
    expect(job.layers[0]!.calls.every((call) => call.references_cut.length === 0)).toBe(true);

    const sent = requestsTo('small-window');
    expect(sent.map((request) => request.status)).toEqual([200]);
    const system = systemText(sent[0]!.messages);
    for (const cut of aggregator.references_cut) {
      expect(system).toContain(cutReferenceNote(cut.kept_tokens, cut.original_tokens));
    }
    // The start of each proposer's answer is what was kept.
    for (const call of job.layers[0]!.calls) expect(system).toContain(call.output!.slice(0, 100));
    expect(sent[0]!.maxTokens).toBe(512);
  });

  it('fails a call whose own messages cannot fit as context_length_exceeded, never sending it', async () => {
    const long = [{ role: 'user', content: 'apple river '.repeat(900) }];
    const job = await stack.waitFor((await stack.submit({ preset: 'budget', messages: long })).id);
    expect(job.status).toBe('failed');
    expect(job.error).toMatchObject({ code: 'aggregator_failed' });
    expect(job.layers[1]!.calls[0]).toMatchObject({
      model: 'fake/small-window',
      status: 'failed',
      attempts: 0,
      usage: { prompt_tokens: 0, completion_tokens: 0 },
      error: { type: 'invalid_request_error', code: 'context_length_exceeded' },
    });
    expect(job.error!.message).toContain('context window');
    // The proposers answered; the aggregator was never called.
    expect(stack.fake.requests).toHaveLength(3);
    expect(requestsTo('small-window')).toHaveLength(0);
  });

  it('fails a layer none of whose calls fits without a provider call, and says when it started', async () => {
    const long = [{ role: 'user', content: 'apple river '.repeat(900) }];
    const created = await stack.submit({ preset: 'unsent', messages: long });
    const job = await stack.waitFor(created.id);
    expect(job.status).toBe('failed');
    expect(job.error).toMatchObject({ code: 'too_few_proposers' });
    expect(job.layers).toHaveLength(1);
    expect(job.layers[0]!.calls.map((call) => [call.attempts, call.error?.code])).toEqual([
      [0, 'context_length_exceeded'],
      [0, 'context_length_exceeded'],
    ]);
    expect(stack.fake.requests).toHaveLength(0);
    const events = await stack.redis.xrange(eventsKey(stack.prefix, created.id), '-', '+');
    const types = events.map(([, fields]) => JSON.parse(fields[1]!) as { type: string });
    expect(types.map((event) => event.type)).toEqual(['layer_started', 'layer_finished', 'done']);
  });

  it("retries the aggregator once with halved references when the provider's window is smaller", async () => {
    const job = await stack.waitFor((await stack.submit({ preset: 'over-claimed', messages: USER })).id);
    expect(job.status).toBe('completed');
    expect(requestsTo('over-claimed').map((request) => request.status)).toEqual([400, 200]);
    const aggregator = job.layers[1]!.calls[0]!;
    expect(aggregator).toMatchObject({
      status: 'completed',
      attempts: 2,
      references_halved: true,
      error: null,
    });
    const kept = aggregator.references_cut.reduce((sum, cut) => sum + cut.kept_tokens, 0);
    const original = aggregator.references_cut.reduce((sum, cut) => sum + cut.original_tokens, 0);
    expect(aggregator.references_cut).toHaveLength(3);
    expect(kept).toBeLessThanOrEqual(original / 2);
    expect(job.output).toBe(aggregator.output);
  });

  it("the console's timeline shows the aggregator's new round running, not its refused first round", async () => {
    // The first round is refused by the window before any behaviour applies; the second is held.
    stack.fake.setBehaviour('over-claimed', { hold: true });
    const created = await stack.submit({ preset: 'over-claimed', messages: USER });
    await pollUntil(
      () => stack.fake.held('over-claimed'),
      (held) => held === 1,
      60_000,
    );
    expect(requestsTo('over-claimed').map((request) => request.status)).toEqual([400, undefined]);
    const during = (await request(stack.app).get(`/console/api/jobs/${created.id}`)).body as ConsoleJob;
    const aggregatorLayer = during.timeline.at(-1)!;
    expect(aggregatorLayer).toMatchObject({ layer: 2, role: 'aggregator', status: 'running' });
    expect(aggregatorLayer.calls).toHaveLength(1);
    expect(aggregatorLayer.calls[0]).toMatchObject({ status: 'running', error: null, finished_at: null });

    stack.fake.release('over-claimed');
    const job = await stack.waitFor(created.id);
    expect(job.status).toBe('completed');
    const after = (await request(stack.app).get(`/console/api/jobs/${created.id}`)).body as ConsoleJob;
    expect(after.timeline.at(-1)!.calls[0]).toMatchObject({ status: 'completed', attempts: 2, error: null });
  });

  it('streams the retried aggregator answer to a chat completion as any other', async () => {
    const client = new OpenAI({ baseURL: `${await stack.listen()}/v1`, apiKey: 'unused', maxRetries: 0 });
    const { data: stream, response } = await client.chat.completions
      .create({ model: 'over-claimed', messages: USER as OpenAI.ChatCompletionMessageParam[], stream: true })
      .withResponse();
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
    const job = await stack.waitFor(response.headers.get('x-moa-job-id')!);
    expect(job.status).toBe('completed');
    expect(requestsTo('over-claimed').map((request) => [request.status, request.stream])).toEqual([
      [400, true],
      [200, true],
    ]);
    expect(job.layers[1]!.calls[0]!.references_halved).toBe(true);
    expect(text).toBe(job.output);
  });

  it('fails with context_length_exceeded after the one retry when halved references still do not fit', async () => {
    stack.fake.setContextWindow('over-claimed', 700);
    const job = await stack.waitFor((await stack.submit({ preset: 'over-claimed', messages: USER })).id);
    expect(job.status).toBe('failed');
    expect(requestsTo('over-claimed').map((request) => request.status)).toEqual([400, 400]);
    expect(job.layers[1]!.calls[0]).toMatchObject({
      status: 'failed',
      attempts: 2,
      references_halved: true,
      error: { type: 'invalid_request_error', code: 'context_length_exceeded' },
    });
  });
});
