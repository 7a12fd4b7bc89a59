import { eventsKey, type LayerView } from '@moa-queue/contract';
import {
  planLayer,
  priceOf,
  worstCaseLayerCostUsd,
  type ChatMessage,
  type LayerRecord,
  type PresetConfig,
} from '@moa-queue/moa';
import request from 'supertest';
import { afterAll, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';
import { metricsPortOf, parseMetrics, startMoaStack, sumOf, type MoaStack } from './support/moa-stack.js';

const USER: ChatMessage[] = [{ role: 'user', content: 'What colour is a clear daytime sky?' }];
const HOOK = { url: 'http://127.0.0.1:9/hook' };

describe('policies: early stop and the cost cap, end to end', () => {
  let stack: MoaStack;

  beforeAll(async () => {
    stack = await startMoaStack({
      name: 'policies',
      redisUrl: inject('redisUrl'),
      workers: 1,
      configure: (file) => {
        const presets = file.presets as Record<string, Record<string, unknown>>;
        return {
          ...file,
          presets: { ...presets, agreeing: { ...presets.three, earlyStop: { minAgreement: 0.9 } } },
        };
      },
    });
  });
  afterAll(async () => {
    await stack?.stop();
  });
  beforeEach(() => stack.fake.reset());

  /** Every proposer answers the same words (in its own case and punctuation). */
  function proposersAgree(): void {
    stack.fake.setBehaviour('alpha', { content: 'The sky is blue.' });
    stack.fake.setBehaviour('beta', { content: 'the sky is BLUE' });
    stack.fake.setBehaviour('gamma', { content: 'Blue: the sky is.' });
  }

  /** The worst case of a preset's layer 1 for this request, as the decider projects it. */
  function worstLayer1(preset: PresetConfig): number {
    return worstCaseLayerCostUsd(planLayer(preset, 1, USER, undefined), (model) =>
      priceOf(stack.config, model),
    );
  }

  /** A layer of a job object as the decider reads it (outputs, order, finish reasons). */
  function layerRecordOf(view: LayerView): LayerRecord {
    return {
      layer: view.layer,
      role: view.role,
      startedAt: 0,
      finishedAt: view.duration_ms,
      durationMs: view.duration_ms,
      calls: view.calls.map((call, agentIndex) => ({
        model: call.model,
        agentIndex,
        status: call.status,
        output: call.output,
        usage: { promptTokens: call.usage.prompt_tokens, completionTokens: call.usage.completion_tokens },
        costUsd: call.cost_usd,
        latencyMs: call.latency_ms,
        attempts: call.attempts,
        startedAt: 0,
        finishedAt: 0,
        finishReason: call.finish_reason,
        error: call.error,
      })),
    };
  }

  /** The events of a request, in order. */
  async function eventsOf(id: string): Promise<{ type: string; status?: string }[]> {
    const entries = await stack.redis.xrange(eventsKey(stack.prefix, id), '-', '+');
    return entries.map(([, fields]) => JSON.parse(fields[1]!) as { type: string; status?: string });
  }

  async function workerMetrics() {
    const port = metricsPortOf(stack.workers[0]!);
    return parseMetrics(await (await fetch(`http://127.0.0.1:${port}/metrics`)).text());
  }

  it('skips the remaining proposer layers when layer 1 agrees, and says so on the job', async () => {
    proposersAgree();
    const job = await stack.waitFor(
      (await stack.submit({ preset: 'agreeing', messages: USER, webhook: HOOK })).id,
    );
    expect(job.status).toBe('completed');
    expect(job.stopped).toEqual({ reason: 'agreement', after_layer: 1 });
    expect(job.layers.map((layer) => [layer.layer, layer.role])).toEqual([
      [1, 'proposer'],
      [3, 'aggregator'],
    ]);
    expect(stack.fake.requests).toHaveLength(4);
    // The aggregator was given layer 1's answers.
    const aggregatorRequest = stack.fake.requests.find((recorded) => recorded.model === 'aggregator');
    expect(JSON.stringify(aggregatorRequest?.messages)).toContain('the sky is BLUE');
    // It ended like any request: its done event and its webhook.
    expect((await eventsOf(job.id)).at(-1)).toEqual({ type: 'done', status: 'completed' });
    expect(await stack.queues.webhooks.getJobState(`${job.id}-webhook`)).not.toBe('unknown');
  });

  it("runs every layer when the request turns the preset's early stop off with null", async () => {
    proposersAgree();
    const job = await stack.waitFor(
      (await stack.submit({ preset: 'agreeing', messages: USER, moa: { early_stop: null } })).id,
    );
    expect(job.status).toBe('completed');
    expect(job).not.toHaveProperty('stopped');
    expect(job.layers.map((layer) => layer.layer)).toEqual([1, 2, 3]);
    expect(stack.fake.requests).toHaveLength(7);
  });

  it("skips to the aggregator when layer 2 would pass the request's cap", async () => {
    const body = { preset: 'three', messages: USER, max_tokens: 20 };
    // An uncapped run of the same request shows what layer 1 answers and costs (the fake is deterministic).
    const uncapped = await stack.waitFor((await stack.submit(body)).id);
    const layer1 = layerRecordOf(uncapped.layers[0]!);
    const three = stack.config.presets.three!;
    const preset = { ...three, aggregator: { ...three.aggregator, maxTokens: 20 } };
    const prices = (model: string) => priceOf(stack.config, model);
    const spent = uncapped.layers[0]!.calls.reduce((sum, call) => sum + call.cost_usd!, 0);
    const worstAggregator = worstCaseLayerCostUsd(planLayer(preset, 3, USER, layer1), prices);
    const worstLayer2 = worstCaseLayerCostUsd(planLayer(preset, 2, USER, layer1), prices);
    // Room for layer 1, then for the aggregator, not for layer 2.
    const cap = spent + worstAggregator;
    expect(cap).toBeGreaterThanOrEqual(worstLayer1(preset));
    expect(spent + worstLayer2).toBeGreaterThan(cap);
    stack.fake.reset();
    const job = await stack.waitFor((await stack.submit({ ...body, moa: { max_cost_usd: cap } })).id);
    expect(job.error).toBeNull();
    expect(job.status).toBe('completed');
    expect(job.stopped).toEqual({ reason: 'cost_cap', after_layer: 1 });
    expect(job.layers.map((layer) => layer.layer)).toEqual([1, 3]);
    expect(stack.fake.requests).toHaveLength(4);
  });

  it('fails with cost_cap_exceeded, keeping layer 1, when not even the aggregator fits', async () => {
    const preset = stack.config.presets.three!;
    const cap = worstLayer1(preset);
    const created = await stack.submit({
      preset: 'three',
      messages: USER,
      webhook: HOOK,
      moa: { max_cost_usd: cap },
    });
    const job = await stack.waitFor(created.id);
    expect(job.status).toBe('failed');
    expect(job.error).toMatchObject({ type: 'moa_error', code: 'cost_cap_exceeded' });
    expect(job.stopped).toEqual({ reason: 'cost_cap', after_layer: 1 });
    expect(job.layers.map((layer) => layer.layer)).toEqual([1]);
    expect(job.layers[0]!.calls.every((call) => call.status === 'completed')).toBe(true);
    expect(stack.fake.requests).toHaveLength(3);
    expect((await eventsOf(job.id)).at(-1)).toEqual({ type: 'done', status: 'failed' });
    expect(await stack.queues.webhooks.getJobState(`${job.id}-webhook`)).not.toBe('unknown');
    // The same cap refused on a chat completion is a deterministic failure: not worth a retry.
    const chat = await request(stack.app)
      .post('/v1/chat/completions')
      .send({ model: 'three', messages: USER, moa: { max_cost_usd: cap } });
    expect(chat.status).toBeGreaterThanOrEqual(500);
    expect(chat.body.error).toMatchObject({ code: 'cost_cap_exceeded' });
    expect(chat.headers['x-should-retry']).toBe('false');
  });

  it('counts each policy stop in moa_policy_stops_total, by preset and reason', async () => {
    const samples = await workerMetrics();
    expect(sumOf(samples, 'moa_policy_stops_total', { preset: 'agreeing', reason: 'agreement' })).toBe(1);
    // The skip to the aggregator, the job and the chat completion that could not fit.
    expect(sumOf(samples, 'moa_policy_stops_total', { preset: 'three', reason: 'cost_cap' })).toBe(3);
    expect(sumOf(samples, 'moa_policy_stops_total', { reason: 'agreement' })).toBe(1);
  });

  describe('the moa object is validated, naming the field', () => {
    const bad: [string, Record<string, unknown>, string][] = [
      ['a zero cap', { max_cost_usd: 0 }, 'moa.max_cost_usd'],
      ['a cap that is a string', { max_cost_usd: '0.02' }, 'moa.max_cost_usd'],
      ['an agreement above 1', { early_stop: { min_agreement: 1.5 } }, 'moa.early_stop.min_agreement'],
      ['an early stop without its agreement', { early_stop: {} }, 'moa.early_stop.min_agreement'],
      ['an unknown key', { maxCostUsd: 1 }, 'moa.maxCostUsd'],
    ];
    for (const [what, moa, param] of bad) {
      it(`refuses ${what} with 400 and param ${param}`, async () => {
        for (const [path, body] of [
          ['/v1/jobs', { messages: USER, moa }],
          ['/v1/chat/completions', { model: 'three', messages: USER, moa }],
          ['/v1/responses', { model: 'three', input: 'hi', moa }],
        ] as const) {
          const response = await request(stack.app).post(path).send(body);
          expect(response.status, path).toBe(400);
          expect(response.body.error, path).toMatchObject({ type: 'invalid_request_error', param });
        }
      });
    }

    it('accepts nulls and an empty object', async () => {
      for (const moa of [null, {}, { max_cost_usd: null, early_stop: null }]) {
        const response = await request(stack.app).post('/v1/jobs').send({ messages: USER, moa });
        expect(response.status).toBe(202);
        await stack.waitFor(response.body.id);
      }
    });
  });
});
