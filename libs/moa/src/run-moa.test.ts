import { afterEach, describe, it, expect } from 'vitest';
import { createFakeProvider, type FakeProvider, type FakeProviderOptions } from '@moa-queue/fake-provider';
import type { ChatRequest, ChatResult } from './chat-model.js';
import { InvalidRequestError } from './errors/invalid-request-error.js';
import { ProviderRateLimitError } from './errors/rate-limit-error.js';
import { ProviderServerError } from './errors/server-error.js';
import { spentUsd, worstCaseLayerCostUsd } from './cost-projection.js';
import { parseMoaConfig, priceOf as priceOfConfig, resolvePreset } from './load-config.js';
import { planLayer } from './moa-plan.js';
import type { MoaEvent } from './moa-events.js';
import { createModelRegistry } from './model-registry.js';
import { closingReferenceTag, openingReferenceTag, referenceTagName } from './reference-boundary.js';
import { cutReferenceNote } from './fit-to-context.js';
import { DEFAULT_REFERENCE_PROMPT } from './references.js';
import { runMoa, type RunMoaOptions } from './run-moa.js';
import { createInMemoryModel, type InMemoryModel, type InMemoryResponse } from './testing/in-memory-model.js';
import type { ChatMessage, ModelPricing, MoaConfig, PresetConfig } from './types.js';

const MESSAGES: ChatMessage[] = [{ role: 'user', content: 'What is a mixture of agents?' }];

const PRICES: Record<string, ModelPricing> = {
  'mem/a': { inputCostPerMTok: 1.2, outputCostPerMTok: 2.4 },
  'mem/b': { inputCostPerMTok: 0.88, outputCostPerMTok: 0.88 },
  'mem/c': { inputCostPerMTok: 0.3, outputCostPerMTok: 1.7 },
  'mem/agg': { inputCostPerMTok: 2.5, outputCostPerMTok: 10 },
};

/** Token usage the in-memory model reports per layer (1, 2 and the aggregator 3). */
const USAGE_BY_LAYER = {
  1: { promptTokens: 11, completionTokens: 21 },
  2: { promptTokens: 313, completionTokens: 47 },
  3: { promptTokens: 509, completionTokens: 613 },
} as const;

interface PresetShape {
  layers?: string[][];
  aggregator?: string;
  minProposers?: number;
  layerTimeoutMs?: number;
  earlyStop?: { minAgreement: number };
  maxCostUsd?: number;
}

/** A config with the `mem` provider, priced models and a `test` preset (2 layers × 3 agents + aggregator by default). */
function setup(shape: PresetShape = {}): { config: MoaConfig; preset: PresetConfig } {
  const {
    layers = [
      ['mem/a', 'mem/b', 'mem/c'],
      ['mem/a', 'mem/b', 'mem/c'],
    ],
    aggregator = 'mem/agg',
    ...rest
  } = shape;
  const config = parseMoaConfig({
    providers: { mem: { baseURL: 'http://127.0.0.1:1/v1' } },
    models: PRICES,
    presets: {
      test: {
        layers: layers.map((layer) => layer.map((model) => ({ model }))),
        aggregator: { model: aggregator },
        ...rest,
      },
    },
  });
  const preset = resolvePreset(config, 'test');
  if (!preset) throw new Error('the test preset is missing');
  return { config, preset };
}

/** An opening reference tag, whatever its nonce: `<reference-1a2b3c4d index="2">`. */
const OPENING_REFERENCE_TAG = /<reference-[0-9a-f]{8} index="\d+">/g;

/** Which layer a request belongs to: the aggregator model is layer 3, references mean layer 2. */
function layerOf(request: ChatRequest): 1 | 2 | 3 {
  if (request.model === 'agg') return 3;
  return (request.messages[0]?.content.match(OPENING_REFERENCE_TAG)?.length ?? 0) > 0 ? 2 : 1;
}

function standardAnswer(request: ChatRequest): ChatResult {
  const layer = layerOf(request);
  return {
    output: `L${layer} answer from ${request.model}`,
    usage: USAGE_BY_LAYER[layer],
    finishReason: 'stop',
  };
}

interface Behaviour {
  /** Return undefined for the standard answer. */
  respond?: (request: ChatRequest, layer: number) => InMemoryResponse | undefined;
  latencyMs?: (request: ChatRequest, layer: number) => number;
}

function memModel(behaviour: Behaviour = {}): InMemoryModel {
  return createInMemoryModel({
    provider: 'mem',
    respond: (request) => behaviour.respond?.(request, layerOf(request)) ?? standardAnswer(request),
    latencyMs: (request) => behaviour.latencyMs?.(request, layerOf(request)) ?? 0,
  });
}

async function run(
  setupResult: { config: MoaConfig; preset: PresetConfig },
  model: InMemoryModel,
  extra: Partial<RunMoaOptions> = {},
) {
  const events: MoaEvent[] = [];
  const delays: number[] = [];
  const retries: { model: string; reason: string }[] = [];
  const result = await runMoa({
    preset: setupResult.preset,
    messages: MESSAGES,
    models: createModelRegistry(setupResult.config, { createChatModel: () => model, env: {} }),
    onEvent: (event) => events.push(event),
    onRetry: (modelId, reason) => retries.push({ model: modelId, reason }),
    sleep: async (milliseconds) => {
      delays.push(milliseconds);
    },
    ...extra,
  });
  return { result, events, delays, retries };
}

function systemOf(request: ChatRequest | undefined): string {
  const first = request?.messages[0];
  if (first?.role !== 'system') throw new Error('expected a system message first');
  return first.content;
}

/** How many opening reference tags the text holds (the prompt and the boundary description spell none). */
function referenceCount(text: string): number {
  return text.match(OPENING_REFERENCE_TAG)?.length ?? 0;
}

/**
 * The numbered reference blocks for these references, in order and separated
 * by blank lines, with the tag name derived from exactly this list.
 */
function referenceBlocks(references: readonly string[]): string {
  const tagName = referenceTagName(references);
  return references
    .map(
      (text, index) => `${openingReferenceTag(tagName, index + 1)}\n${text}\n${closingReferenceTag(tagName)}`,
    )
    .join('\n\n');
}

describe('runMoa', () => {
  it('makes exactly 3 + 3 + 1 calls and numbers the layers 1..3 with their roles', async () => {
    const model = memModel();
    const { result } = await run(setup(), model);
    expect(result.status).toBe('completed');
    expect(result.error).toBeNull();
    expect(result.output).toBe('L3 answer from agg');
    expect(model.calls.map((call) => call.model)).toEqual(['a', 'b', 'c', 'a', 'b', 'c', 'agg']);
    expect(result.layers.map((layer) => [layer.layer, layer.role, layer.calls.length])).toEqual([
      [1, 'proposer', 3],
      [2, 'proposer', 3],
      [3, 'aggregator', 1],
    ]);
    for (const layer of result.layers) {
      expect(layer.durationMs).toBe(layer.finishedAt - layer.startedAt);
      layer.calls.forEach((call, index) => {
        expect(call).toMatchObject({ status: 'completed', attempts: 1, agentIndex: index, error: null });
      });
    }
    expect(result.layers[0]?.calls.map((call) => call.model)).toEqual(['mem/a', 'mem/b', 'mem/c']);
    expect(result.layers[2]?.calls[0]?.model).toBe('mem/agg');
    // Defaults of the config: proposers 512 tokens, the aggregator 2048, temperature 0.7.
    expect(model.calls.slice(0, 6).every((call) => call.maxTokens === 512 && call.temperature === 0.7)).toBe(
      true,
    );
    expect(model.calls[6]).toMatchObject({ maxTokens: 2048, temperature: 0.7 });
  });

  it('sends layer-1 calls the request unchanged, without references', async () => {
    const model = memModel();
    await run(setup(), model);
    for (const call of model.calls.slice(0, 3)) {
      expect(call.messages).toEqual(MESSAGES);
      expect(call.messages.some((message) => message.role === 'system')).toBe(false);
    }
  });

  it('gives every layer-2 call all layer-1 outputs, numbered in agent order and delimited', async () => {
    // Layer 1 finishes in reverse agent order: c, then b, then a.
    const latencies: Record<string, number> = { a: 40, b: 20, c: 0 };
    const model = memModel({
      latencyMs: (request, layer) => (layer === 1 ? (latencies[request.model] ?? 0) : 0),
    });
    await run(setup(), model);
    const layer2 = model.calls.slice(3, 6);
    expect(layer2.map((call) => call.model)).toEqual(['a', 'b', 'c']);
    for (const call of layer2) {
      const system = systemOf(call);
      expect(system.startsWith(DEFAULT_REFERENCE_PROMPT)).toBe(true);
      expect(system).toContain(referenceBlocks(['L1 answer from a', 'L1 answer from b', 'L1 answer from c']));
      expect(referenceCount(system)).toBe(3);
      // The request's own messages follow unchanged.
      expect(call.messages.slice(1)).toEqual(MESSAGES);
    }
  });

  it('gives the aggregator every layer-2 output (and not layer 1)', async () => {
    const model = memModel();
    const { result } = await run(setup(), model);
    const system = systemOf(model.calls[6]);
    expect(system).toContain(referenceBlocks(['a', 'b', 'c'].map((name) => `L2 answer from ${name}`)));
    expect(referenceCount(system)).toBe(3);
    expect(system).not.toContain('L1 answer');
    expect(model.calls[6]?.messages.slice(1)).toEqual(MESSAGES);
    expect(result.layers[1]?.calls.map((call) => call.output)).toEqual([
      'L2 answer from a',
      'L2 answer from b',
      'L2 answer from c',
    ]);
  });

  it('sums usage and cost over every call, priced from the config', async () => {
    const { result } = await run(setup(), memModel());
    const plan: [layer: 1 | 2 | 3, model: string][] = [
      [1, 'mem/a'],
      [1, 'mem/b'],
      [1, 'mem/c'],
      [2, 'mem/a'],
      [2, 'mem/b'],
      [2, 'mem/c'],
      [3, 'mem/agg'],
    ];
    let expectedCost = 0;
    let promptTokens = 0;
    let completionTokens = 0;
    const callCosts: number[] = [];
    for (const [layer, modelId] of plan) {
      const usage = USAGE_BY_LAYER[layer];
      const price = PRICES[modelId] as ModelPricing;
      const cost =
        (usage.promptTokens * price.inputCostPerMTok + usage.completionTokens * price.outputCostPerMTok) /
        1e6;
      callCosts.push(cost);
      expectedCost += cost;
      promptTokens += usage.promptTokens;
      completionTokens += usage.completionTokens;
    }
    const calls = result.layers.flatMap((layer) => layer.calls);
    expect(calls.map((call) => call.costUsd)).toEqual(callCosts);
    expect(calls.map((call) => call.usage)).toEqual(plan.map(([layer]) => USAGE_BY_LAYER[layer]));
    expect(result.usage).toEqual({ promptTokens, completionTokens });
    expect(result.usage).toEqual({
      promptTokens: 3 * 11 + 3 * 313 + 509,
      completionTokens: 3 * 21 + 3 * 47 + 613,
    });
    expect(result.costUsd).toBe(expectedCost);
  });

  it('emits layer_started / layer_finished per layer, then done, in order', async () => {
    const { events } = await run(setup(), memModel());
    expect(
      events.map((event) => ({ ...event, ...('durationMs' in event ? { durationMs: 0 } : {}) })),
    ).toEqual([
      { type: 'layer_started', layer: 1, role: 'proposer', calls: 3 },
      { type: 'layer_finished', layer: 1, role: 'proposer', durationMs: 0, succeeded: 3, failed: 0 },
      { type: 'layer_started', layer: 2, role: 'proposer', calls: 3 },
      { type: 'layer_finished', layer: 2, role: 'proposer', durationMs: 0, succeeded: 3, failed: 0 },
      { type: 'layer_started', layer: 3, role: 'aggregator', calls: 1 },
      { type: 'layer_finished', layer: 3, role: 'aggregator', durationMs: 0, succeeded: 1, failed: 0 },
      { type: 'done', status: 'completed' },
    ]);
  });

  it("streams only the aggregator's answer to onAggregatorDelta", async () => {
    const model = memModel();
    const deltas: string[] = [];
    const { result } = await run(setup(), model, { onAggregatorDelta: (text) => deltas.push(text) });
    expect(deltas.length).toBeGreaterThan(1);
    expect(deltas.join('')).toBe(result.output);
    expect(model.calls.slice(0, 6).every((call) => call.onDelta === undefined)).toBe(true);
    expect(model.calls[6]?.onDelta).toBeTypeOf('function');
  });

  it('tolerates one proposer failing permanently, reports it and leaves it out of the references', async () => {
    const model = memModel({
      respond: (request, layer) =>
        layer === 1 && request.model === 'b'
          ? new InvalidRequestError('prompt rejected', { status: 400 })
          : undefined,
    });
    const { result, events, delays } = await run(setup(), model);
    expect(result.status).toBe('completed');
    expect(model.calls).toHaveLength(7);
    expect(delays).toEqual([]);
    const failed = result.layers[0]?.calls[1];
    expect(failed).toMatchObject({
      model: 'mem/b',
      agentIndex: 1,
      status: 'failed',
      output: null,
      attempts: 1,
      usage: { promptTokens: 0, completionTokens: 0 },
      error: { type: 'invalid_request_error', message: 'prompt rejected' },
    });
    for (const call of model.calls.slice(3, 6)) {
      const system = systemOf(call);
      expect(system).toContain(referenceBlocks(['L1 answer from a', 'L1 answer from c']));
      expect(referenceCount(system)).toBe(2);
      expect(system).not.toContain('L1 answer from b');
    }
    expect(events[1]).toMatchObject({ type: 'layer_finished', layer: 1, succeeded: 2, failed: 1 });
  });

  it('fails with too_few_proposers when every proposer of a layer fails, and never calls the aggregator', async () => {
    const model = memModel({
      respond: (_request, layer) =>
        layer === 1 ? new InvalidRequestError('no', { status: 400 }) : undefined,
    });
    const { result, events } = await run(setup(), model);
    expect(result.status).toBe('failed');
    expect(result.output).toBeNull();
    expect(result.error).toMatchObject({ type: 'moa_error', code: 'too_few_proposers' });
    expect(model.calls).toHaveLength(3);
    expect(result.layers).toHaveLength(1);
    expect(events.map((event) => event.type)).toEqual(['layer_started', 'layer_finished', 'done']);
    expect(events.at(-1)).toEqual({ type: 'done', status: 'failed' });
  });

  it('fails with too_few_proposers when the second layer fails entirely', async () => {
    const model = memModel({
      respond: (_request, layer) =>
        layer === 2 ? new InvalidRequestError('no', { status: 400 }) : undefined,
    });
    const { result } = await run(setup(), model);
    expect(result.status).toBe('failed');
    expect(result.error?.code).toBe('too_few_proposers');
    expect(model.calls.map((call) => call.model)).toEqual(['a', 'b', 'c', 'a', 'b', 'c']);
    expect(result.layers.map((layer) => layer.layer)).toEqual([1, 2]);
  });

  it('fails a 2-agent layer with one failure when minProposers is 2', async () => {
    const shape = {
      layers: [
        ['mem/a', 'mem/b'],
        ['mem/a', 'mem/b'],
      ],
      minProposers: 2,
    };
    const model = memModel({
      respond: (request, layer) =>
        layer === 1 && request.model === 'a' ? new InvalidRequestError('no', { status: 400 }) : undefined,
    });
    const { result } = await run(setup(shape), model);
    expect(result.status).toBe('failed');
    expect(result.error?.code).toBe('too_few_proposers');
    expect(result.error?.message).toContain('minProposers');
    expect(model.calls).toHaveLength(2);

    // The same preset without failures completes.
    const healthy = await run(setup(shape), memModel());
    expect(healthy.result.status).toBe('completed');
  });

  it('fails with aggregator_failed when the aggregator fails', async () => {
    const model = memModel({
      respond: (_request, layer) =>
        layer === 3 ? new InvalidRequestError('too long', { status: 400 }) : undefined,
    });
    const { result, events } = await run(setup(), model);
    expect(result.status).toBe('failed');
    expect(result.output).toBeNull();
    expect(result.error).toMatchObject({ type: 'moa_error', code: 'aggregator_failed' });
    expect(result.layers).toHaveLength(3);
    expect(result.layers[2]?.calls[0]).toMatchObject({
      status: 'failed',
      error: { type: 'invalid_request_error' },
    });
    expect(model.calls).toHaveLength(7);
    expect(events.at(-1)).toEqual({ type: 'done', status: 'failed' });
  });

  it('retries a retryable error and records 2 attempts', async () => {
    let failedOnce = false;
    const model = memModel({
      respond: (request, layer) => {
        if (layer === 1 && request.model === 'a' && !failedOnce) {
          failedOnce = true;
          return new ProviderServerError('overloaded', { status: 500 });
        }
        return undefined;
      },
    });
    const { result, delays, retries } = await run(setup(), model);
    expect(result.status).toBe('completed');
    expect(result.layers[0]?.calls[0]).toMatchObject({
      status: 'completed',
      attempts: 2,
      output: 'L1 answer from a',
    });
    expect(result.layers[0]?.calls[1]?.attempts).toBe(1);
    expect(model.calls).toHaveLength(8);
    expect(delays).toHaveLength(1);
    expect(delays[0]).toBeGreaterThanOrEqual(375);
    expect(delays[0]).toBeLessThanOrEqual(500);
    expect(retries).toEqual([{ model: 'mem/a', reason: 'server_error' }]);
  });

  it('waits Retry-After on a 429 without counting it as an attempt', async () => {
    let limited = false;
    const model = memModel({
      respond: (request, layer) => {
        if (layer === 1 && request.model === 'a' && !limited) {
          limited = true;
          return new ProviderRateLimitError('slow down', { status: 429, retryAfterMs: 1234 });
        }
        return undefined;
      },
    });
    const { result, delays, retries } = await run(setup(), model);
    expect(result.status).toBe('completed');
    expect(result.layers[0]?.calls[0]).toMatchObject({ status: 'completed', attempts: 1 });
    expect(delays).toEqual([1234]);
    expect(retries).toEqual([{ model: 'mem/a', reason: 'rate_limit' }]);
  });

  it('abandons a straggler at layerTimeoutMs and proceeds with the others', async () => {
    const layerTimeoutMs = 100;
    const model = memModel({
      latencyMs: (request, layer) => (layer === 1 && request.model === 'c' ? 3_600_000 : 0),
    });
    const { result, events } = await run(setup({ layerTimeoutMs }), model);
    expect(result.status).toBe('completed');
    const layer1 = result.layers[0];
    expect(layer1?.calls.map((call) => call.status)).toEqual(['completed', 'completed', 'failed']);
    expect(layer1?.calls[2]).toMatchObject({
      model: 'mem/c',
      output: null,
      attempts: 1,
      error: { type: 'timeout_error', code: 'layer_deadline' },
    });
    // Timers may fire a millisecond early against the wall clock.
    expect(layer1?.durationMs).toBeGreaterThanOrEqual(layerTimeoutMs - 5);
    for (const call of model.calls.slice(3, 6)) {
      const system = systemOf(call);
      expect(referenceCount(system)).toBe(2);
      expect(system).toContain(referenceBlocks(['L1 answer from a', 'L1 answer from b']));
    }
    expect(model.calls).toHaveLength(7);
    expect(events[1]).toMatchObject({ type: 'layer_finished', layer: 1, succeeded: 2, failed: 1 });
  });

  it('is cancelled, with no further call, when the signal aborts between layers', async () => {
    const controller = new AbortController();
    const model = memModel({
      respond: (request, layer) => {
        if (layer === 1 && request.model === 'a') controller.abort();
        return undefined;
      },
    });
    const { result, events } = await run(setup(), model, { signal: controller.signal });
    expect(result.status).toBe('cancelled');
    expect(result.output).toBeNull();
    expect(result.error).toMatchObject({ type: 'cancelled', code: 'cancelled' });
    expect(model.calls).toHaveLength(3);
    expect(result.layers).toHaveLength(1);
    expect(events.at(-1)).toEqual({ type: 'done', status: 'cancelled' });
  });

  it('is cancelled, with no further call, when the signal aborts during a layer', async () => {
    const controller = new AbortController();
    const model = memModel({ latencyMs: () => 3_600_000 });
    setTimeout(() => controller.abort(), 20);
    const { result, events } = await run(setup(), model, { signal: controller.signal });
    expect(result.status).toBe('cancelled');
    expect(result.error?.code).toBe('cancelled');
    expect(result.layers[0]?.calls.every((call) => call.status === 'failed')).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(model.calls).toHaveLength(3);
    expect(events.at(-1)).toEqual({ type: 'done', status: 'cancelled' });
  });

  it('makes no call at all when the signal is already aborted', async () => {
    const model = memModel();
    const { result, events } = await run(setup(), model, { signal: AbortSignal.abort() });
    expect(result.status).toBe('cancelled');
    expect(result.layers).toEqual([]);
    expect(result.usage).toEqual({ promptTokens: 0, completionTokens: 0 });
    expect(model.calls).toHaveLength(0);
    expect(events).toEqual([{ type: 'done', status: 'cancelled' }]);
  });

  it('sends identical messages on two identical runs, whatever order calls finish in', async () => {
    const first = memModel({ latencyMs: (request) => ({ a: 30, b: 0, c: 15 })[request.model] ?? 0 });
    const second = memModel({ latencyMs: (request) => ({ a: 0, b: 30, c: 15 })[request.model] ?? 0 });
    const one = await run(setup(), first);
    const two = await run(setup(), second);
    const sent = (model: InMemoryModel) =>
      model.calls.map(({ model: id, messages, temperature, maxTokens }) => ({
        id,
        messages,
        temperature,
        maxTokens,
      }));
    expect(sent(first)).toHaveLength(7);
    expect(sent(second)).toEqual(sent(first));
    expect(two.result.output).toBe(one.result.output);
    expect(two.result.usage).toEqual(one.result.usage);
    expect(two.result.costUsd).toBe(one.result.costUsd);
  });

  it('reports a null cost for an unpriced model, and a null total', async () => {
    const { result } = await run(setup({ aggregator: 'mem/free' }), memModel());
    expect(result.status).toBe('completed');
    expect(result.layers[2]?.calls[0]?.costUsd).toBeNull();
    expect(result.layers[0]?.calls.every((call) => typeof call.costUsd === 'number')).toBe(true);
    expect(result.costUsd).toBeNull();
  });

  it('keeps a known total when the only unpriced call failed without using tokens', async () => {
    const shape = { layers: [['mem/a', 'mem/free']] };
    const model = memModel({
      respond: (request) =>
        request.model === 'free' ? new InvalidRequestError('no', { status: 400 }) : undefined,
    });
    const { result } = await run(setup(shape), model);
    expect(result.status).toBe('completed');
    expect(result.layers[0]?.calls[1]).toMatchObject({ status: 'failed', costUsd: null });
    expect(typeof result.costUsd).toBe('number');
  });
});

describe('runMoa carries out the policies', () => {
  /** The standard preset with a small aggregator budget, so that it costs less than a proposer layer. */
  function cheapAggregator(extra: Partial<PresetConfig> = {}) {
    const base = setup();
    return {
      config: base.config,
      preset: { ...base.preset, aggregator: { ...base.preset.aggregator, maxTokens: 100 }, ...extra },
    };
  }
  const priceOf = (config: MoaConfig) => (model: string) => priceOfConfig(config, model);

  it('skips the remaining proposer layers when layer 1 agrees, and says so', async () => {
    const model = memModel({
      respond: (request, layer) =>
        layer === 1 ? `The answer is ${request.model === 'c' ? 'FORTY-TWO' : 'forty-two'}.` : undefined,
    });
    const { result, events } = await run(setup({ earlyStop: { minAgreement: 0.9 } }), model);
    expect(result.status).toBe('completed');
    expect(result.stopped).toEqual({ reason: 'agreement', afterLayer: 1 });
    expect(result.layers.map((layer) => [layer.layer, layer.role])).toEqual([
      [1, 'proposer'],
      [3, 'aggregator'],
    ]);
    expect(model.calls).toHaveLength(4);
    expect(
      events
        .filter((event) => event.type === 'layer_started')
        .map((event) => 'layer' in event && event.layer),
    ).toEqual([1, 3]);
  });

  it('runs every layer when the answers disagree', async () => {
    const { result, events } = await run(setup({ earlyStop: { minAgreement: 0.9 } }), memModel());
    expect(result.stopped).toBeNull();
    expect(result.layers).toHaveLength(3);
    expect(events.at(-1)).toEqual({ type: 'done', status: 'completed' });
  });

  it('skips to the aggregator when layer 2 would pass the cost cap', async () => {
    const plain = cheapAggregator();
    const prices = priceOf(plain.config);
    const uncapped = await run(plain, memModel());
    const layer1 = uncapped.result.layers[0]!;
    const worstLayer1 = worstCaseLayerCostUsd(planLayer(plain.preset, 1, MESSAGES, undefined), prices);
    const worstLayer2 = worstCaseLayerCostUsd(planLayer(plain.preset, 2, MESSAGES, layer1), prices);
    const worstAggregator = worstCaseLayerCostUsd(planLayer(plain.preset, 3, MESSAGES, layer1), prices);
    // Layer 1 fits; after it, the aggregator does and layer 2 (its prompt now holds references) does not.
    const cap = Math.max(worstLayer1, spentUsd([layer1]) + worstAggregator);
    expect(spentUsd([layer1]) + worstLayer2).toBeGreaterThan(cap);
    const model = memModel();
    const { result } = await run(cheapAggregator({ maxCostUsd: cap }), model);
    expect(result.status).toBe('completed');
    expect(result.stopped).toEqual({ reason: 'cost_cap', afterLayer: 1 });
    expect(result.layers.map((layer) => layer.layer)).toEqual([1, 3]);
    expect(model.calls).toHaveLength(4);
  });

  it('fails with cost_cap_exceeded, keeping layer 1, when not even the aggregator fits', async () => {
    const plain = setup();
    const cap = worstCaseLayerCostUsd(planLayer(plain.preset, 1, MESSAGES, undefined), priceOf(plain.config));
    const model = memModel();
    const { result, events } = await run({ ...plain, preset: { ...plain.preset, maxCostUsd: cap } }, model);
    expect(result.status).toBe('failed');
    expect(result.error).toMatchObject({ type: 'moa_error', code: 'cost_cap_exceeded' });
    expect(result.stopped).toEqual({ reason: 'cost_cap', afterLayer: 1 });
    expect(result.layers.map((layer) => layer.layer)).toEqual([1]);
    expect(model.calls).toHaveLength(3);
    expect(events.at(-1)).toEqual({ type: 'done', status: 'failed' });
  });

  it('runs the aggregator again with half the references after context_length_exceeded', async () => {
    let aggregatorCalls = 0;
    const model = memModel({
      respond: (_request, layer) => {
        if (layer !== 3) return undefined;
        aggregatorCalls += 1;
        return aggregatorCalls === 1
          ? new InvalidRequestError('too long', { status: 400, code: 'context_length_exceeded' })
          : 'the short answer';
      },
    });
    const { result } = await run(setup(), model);
    expect(result.status).toBe('completed');
    expect(result.output).toBe('the short answer');
    expect(result.layers).toHaveLength(3);
    expect(result.layers[2]).toMatchObject({ layer: 3, role: 'aggregator', referenceShare: 0.5 });
    expect(result.layers[2]?.calls).toHaveLength(1);
    expect(model.calls).toHaveLength(8);
  });

  it('fails when the second aggregator run exceeds the context too', async () => {
    const model = memModel({
      respond: (_request, layer) =>
        layer === 3
          ? new InvalidRequestError('too long', { status: 400, code: 'context_length_exceeded' })
          : undefined,
    });
    const { result } = await run(setup(), model);
    expect(result.error?.code).toBe('aggregator_failed');
    expect(result.layers[2]?.referenceShare).toBe(0.5);
    expect(model.calls).toHaveLength(8);
  });
});

describe('runMoa over HTTP against the fake provider', () => {
  const started: FakeProvider[] = [];

  afterEach(async () => {
    await Promise.all(started.splice(0).map((fake) => fake.close()));
  });

  async function httpSetup(options: FakeProviderOptions = {}) {
    const fake = await createFakeProvider(options);
    started.push(fake);
    const config = parseMoaConfig({
      providers: { fake: { baseURL: fake.url, apiKeyEnv: 'FAKE_RUN_KEY' } },
      models: { 'fake/org/a': { inputCostPerMTok: 1, outputCostPerMTok: 2 } },
      presets: {
        http: {
          layers: [
            [{ model: 'fake/org/a' }, { model: 'fake/org/b' }],
            [{ model: 'fake/org/a' }, { model: 'fake/org/b' }],
          ],
          aggregator: { model: 'fake/org/a' },
        },
      },
    });
    const preset = resolvePreset(config, 'http');
    if (!preset) throw new Error('the http preset is missing');
    const models = createModelRegistry(config, { env: { FAKE_RUN_KEY: 'sk-run' } });
    return { fake, preset, models };
  }

  it('runs every layer through the adapter and streams the aggregator', async () => {
    const { fake, preset, models } = await httpSetup();
    const deltas: string[] = [];
    const result = await runMoa({
      preset,
      messages: MESSAGES,
      models,
      onAggregatorDelta: (text) => deltas.push(text),
    });
    expect(result.status).toBe('completed');
    expect(fake.requests.map((request) => [request.model, request.stream])).toEqual([
      ['org/a', false],
      ['org/b', false],
      ['org/a', false],
      ['org/b', false],
      ['org/a', true],
    ]);
    expect(fake.requests.every((request) => request.authorization === 'Bearer sk-run')).toBe(true);
    const layer1 = result.layers[0]?.calls.map((call) => call.output) ?? [];
    expect(layer1).toHaveLength(2);
    const layer2System = fake.requests[2]?.messages[0]?.content ?? '';
    expect(layer2System).toContain(referenceBlocks(layer1.map((output) => output ?? '')));
    expect(deltas.join('')).toBe(result.output);
    // org/b has no price, so the total is unknown.
    expect(result.layers[0]?.calls[0]?.costUsd).toBeTypeOf('number');
    expect(result.layers[0]?.calls[1]?.costUsd).toBeNull();
    expect(result.costUsd).toBeNull();
  });

  it('retries a scripted 500 and waits a scripted Retry-After', async () => {
    const { fake, preset, models } = await httpSetup();
    fake.script('org/a', { status: 500 });
    fake.script('org/b', { status: 429, retryAfterSeconds: 2 });
    const delays: number[] = [];
    const result = await runMoa({
      preset,
      messages: MESSAGES,
      models,
      sleep: async (milliseconds) => {
        delays.push(milliseconds);
      },
    });
    expect(result.status).toBe('completed');
    expect(result.layers[0]?.calls.map((call) => call.attempts)).toEqual([2, 1]);
    expect(delays).toContain(2000);
    expect(fake.requests).toHaveLength(7);
  });

  it('is cancelled when the signal aborts while the aggregator streams', async () => {
    const { fake, preset, models } = await httpSetup({ outputWords: 40, tokenIntervalMs: 10 });
    const controller = new AbortController();
    const deltas: string[] = [];
    const result = await runMoa({
      preset,
      messages: MESSAGES,
      models,
      signal: controller.signal,
      onAggregatorDelta: (text) => {
        deltas.push(text);
        if (deltas.length === 3) controller.abort();
      },
    });
    expect(deltas.length).toBeLessThan(40);
    expect(result.status).toBe('cancelled');
    expect(result.output).toBeNull();
    expect(result.error?.code).toBe('cancelled');
    expect(fake.requests).toHaveLength(5);
  });

  describe('context budgets', () => {
    /** Three proposers answering 400 lorem words (~475 tokens each) and an aggregator with `maxTokens` 512. */
    async function budgetSetup(aggregatorWindow: number, options: FakeProviderOptions = {}) {
      const fake = await createFakeProvider({ outputWords: 400, ...options });
      started.push(fake);
      const config = parseMoaConfig({
        providers: { fake: { baseURL: fake.url } },
        models: {
          'fake/org/agg': { inputCostPerMTok: 1, outputCostPerMTok: 1, contextWindow: aggregatorWindow },
        },
        presets: {
          budget: {
            layers: [
              ['fake/org/p1', 'fake/org/p2', 'fake/org/p3'].map((model) => ({ model, maxTokens: 600 })),
            ],
            aggregator: { model: 'fake/org/agg', maxTokens: 512 },
          },
        },
      });
      const preset = resolvePreset(config, 'budget');
      if (!preset) throw new Error('the budget preset is missing');
      return { fake, preset, models: createModelRegistry(config, { env: {} }) };
    }

    it("shortens the references to fit the aggregator's window, and the record says so", async () => {
      const { fake, preset, models } = await budgetSetup(2000, { contextWindows: { 'org/agg': 2000 } });
      const result = await runMoa({ preset, messages: MESSAGES, models });
      expect(result.status).toBe('completed');
      const aggregator = result.layers[1]?.calls[0];
      expect(aggregator?.status).toBe('completed');
      expect(aggregator?.referencesCut?.map((cut) => cut.agentIndex)).toEqual([0, 1, 2]);
      const [first] = aggregator?.referencesCut ?? [];
      expect(first?.keptTokens).toBeLessThan(first?.originalTokens ?? 0);
      expect(aggregator?.maxTokensLowered).toBeUndefined();
      const sent = fake.requests.find((request) => request.model === 'org/agg');
      expect(sent?.status).toBe(200);
      for (const cut of aggregator?.referencesCut ?? []) {
        expect(sent?.messages[0]?.content).toContain(cutReferenceNote(cut.keptTokens, cut.originalTokens));
      }
    });

    it('fails a call whose own messages cannot fit as context_length_exceeded, without sending it', async () => {
      const { fake, preset, models } = await budgetSetup(2000);
      const long: ChatMessage[] = [{ role: 'user', content: 'apple river '.repeat(900) }];
      const result = await runMoa({ preset, messages: long, models });
      expect(result.status).toBe('failed');
      expect(result.error?.code).toBe('aggregator_failed');
      const aggregator = result.layers[1]?.calls[0];
      expect(aggregator).toMatchObject({
        status: 'failed',
        attempts: 0,
        error: { type: 'invalid_request_error', code: 'context_length_exceeded' },
      });
      expect(fake.requests.map((request) => request.model)).not.toContain('org/agg');
    });

    it("retries once with halved references when the provider's window is smaller than configured", async () => {
      const { fake, preset, models } = await budgetSetup(32_768, { contextWindows: { 'org/agg': 2000 } });
      const result = await runMoa({ preset, messages: MESSAGES, models });
      expect(result.status).toBe('completed');
      const sent = fake.requests.filter((request) => request.model === 'org/agg');
      expect(sent.map((request) => request.status)).toEqual([400, 200]);
      const aggregator = result.layers[1]?.calls[0];
      expect(aggregator).toMatchObject({ status: 'completed', attempts: 2, referenceShare: 0.5 });
      const kept = (aggregator?.referencesCut ?? []).reduce((sum, cut) => sum + cut.keptTokens, 0);
      const original = (aggregator?.referencesCut ?? []).reduce((sum, cut) => sum + cut.originalTokens, 0);
      expect(kept).toBeLessThanOrEqual(original / 2);
    });

    it('fails with context_length_exceeded after the one retry when halved references still do not fit', async () => {
      const { fake, preset, models } = await budgetSetup(32_768, { contextWindows: { 'org/agg': 700 } });
      const result = await runMoa({ preset, messages: MESSAGES, models });
      expect(result.status).toBe('failed');
      expect(fake.requests.filter((request) => request.model === 'org/agg').map((r) => r.status)).toEqual([
        400, 400,
      ]);
      expect(result.layers[1]?.calls[0]).toMatchObject({
        status: 'failed',
        attempts: 2,
        referenceShare: 0.5,
        error: { type: 'invalid_request_error', code: 'context_length_exceeded' },
      });
    });
  });
});
