import {
  callJobId,
  jobDataSchemasFor,
  markCancelled,
  newRequestData,
  requestJobKey,
  type CallJobData,
  type RequestJobData,
} from '@moa-queue/contract';
import {
  contextWindowOf,
  parseMoaConfig,
  planLayer,
  referenceLayerOf,
  roleOfLayer,
  type CallRecord,
  type LayerRecord,
} from '@moa-queue/moa';
import { uniquePrefix } from '@moa-queue/test-support';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createCallPromptReader } from './call-prompt.js';

const config = parseMoaConfig({
  providers: { fake: { baseURL: 'http://127.0.0.1:9/v1' } },
  // A small window for the aggregator, so that halving its references changes its prompt.
  models: { 'fake/aggregator': { inputCostPerMTok: 1, outputCostPerMTok: 1, contextWindow: 1200 } },
  presets: {
    trio: {
      layers: [
        [{ model: 'fake/alpha' }, { model: 'fake/beta' }],
        [{ model: 'fake/alpha' }, { model: 'fake/beta' }],
      ],
      aggregator: { model: 'fake/aggregator', maxTokens: 256 },
    },
  },
  defaultPreset: 'trio',
});
const preset = config.presets.trio!;
const windowOf = (model: string) => contextWindowOf(config, model);

function answered(agentIndex: number, output: string, finishReason = 'stop'): CallRecord {
  return {
    model: preset.layers[0]![agentIndex]!.model,
    agentIndex,
    status: 'completed',
    output,
    usage: { promptTokens: 10, completionTokens: 10 },
    costUsd: null,
    latencyMs: 5,
    attempts: 1,
    startedAt: 1,
    finishedAt: 2,
    finishReason,
    error: null,
  };
}

function layerRecord(layer: number, calls: CallRecord[]): LayerRecord {
  return { layer, role: roleOfLayer(preset, layer), startedAt: 1, finishedAt: 2, durationMs: 1, calls };
}

const long = (word: string) => Array.from({ length: 400 }, (_, index) => `${word}${index}`).join(' ');
const layers = [
  layerRecord(1, [answered(0, 'first layer, alpha'), answered(1, 'first layer, beta', 'length')]),
  layerRecord(2, [answered(1, long('beta')), answered(0, long('alpha'))]),
];

/** A call job's data and its own key, as the call processor passes them. */
function callOf(layer: number, agentIndex: number, extra: Partial<CallJobData> = {}): [CallJobData, string] {
  const role = roleOfLayer(preset, layer);
  const agent = role === 'aggregator' ? preset.aggregator : preset.layers[layer - 1]![agentIndex]!;
  const data = { requestId: '', presetName: 'trio', layer, role, agentIndex, agent, ...extra };
  return [data, callKeyOf(data)];
}

function callKeyOf(data: CallJobData): string {
  return `${prefix}:moa-llm-fake:${callJobId(data.requestId, data.layer, data.agentIndex, data.round)}`;
}

const prefix = uniquePrefix('call-prompt');

describe('a call job builds its prompt from its request', () => {
  let redis: Redis;
  beforeAll(() => {
    redis = new Redis(inject('redisUrl'), { maxRetriesPerRequest: null, enableAutoPipelining: true });
  });
  afterAll(async () => {
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length > 0) await redis.del(...keys);
    redis.disconnect();
  });

  /** A request as the API makes it, stored as BullMQ stores a job's data and progress. */
  async function storedRequest(progressLayers: unknown[] | undefined): Promise<RequestJobData> {
    const data = newRequestData({
      tenant: 'default',
      preset,
      messages: [{ role: 'user', content: 'What is a queue?' }],
      source: 'jobs',
      stream: true,
      aggregatorOptions: { temperature: 0.1 },
    });
    await redis.hset(requestJobKey(prefix, data.requestId), 'data', JSON.stringify(data));
    if (progressLayers) {
      await redis.hset(
        requestJobKey(prefix, data.requestId),
        'progress',
        JSON.stringify({ layers: progressLayers, currentLayer: null, layerStartedAt: {}, error: null }),
      );
    }
    return data;
  }

  it("sends exactly what the orchestrator planned, every layer's references read from the stored layers", async () => {
    const request = await storedRequest(layers);
    const read = createCallPromptReader({ redis, prefix, config, schemas: jobDataSchemasFor(config) });
    for (const [layer, agents] of [
      [1, 2],
      [2, 2],
      [3, 1],
    ] as const) {
      const plan = planLayer(preset, layer, request.messages, referenceLayerOf(layers, layer), {
        contextWindowOf: windowOf,
      });
      for (let agentIndex = 0; agentIndex < agents; agentIndex += 1) {
        const prompt = await read(...callOf(layer, agentIndex, { requestId: request.requestId }));
        expect(prompt.outcome).toBe('prompt');
        if (prompt.outcome !== 'prompt') continue;
        expect(prompt.planned).toEqual(plan[agentIndex]);
        // The request's streaming and parameters are its aggregator's only.
        expect(prompt.stream).toBe(layer === 3);
        expect(prompt.callOptions).toEqual(layer === 3 ? { temperature: 0.1 } : undefined);
      }
    }
    // The second layer's prompt carries the first layer's answers; the aggregator's the second's.
    const second = await read(...callOf(2, 0, { requestId: request.requestId }));
    expect(JSON.stringify(second)).toContain('first layer, beta');
    const aggregator = await read(...callOf(3, 0, { requestId: request.requestId }));
    expect(JSON.stringify(aggregator)).toContain('alpha0');
    expect(JSON.stringify(aggregator)).not.toContain('first layer');
  });

  it('builds a round-1 aggregator with the share of the reference budget it was planned with', async () => {
    const refused = layerRecord(3, [{ ...answered(0, ''), status: 'failed', output: null }]);
    const request = await storedRequest([...layers, refused]);
    const read = createCallPromptReader({ redis, prefix, config, schemas: jobDataSchemasFor(config) });
    const halved = await read(
      ...callOf(3, 0, { requestId: request.requestId, round: 1, referenceShare: 0.5 }),
    );
    const whole = await read(...callOf(3, 0, { requestId: request.requestId }));
    const planned = planLayer(preset, 3, request.messages, layers[1], {
      referenceShare: 0.5,
      contextWindowOf: windowOf,
    })[0];
    expect(halved.outcome === 'prompt' && halved.planned).toEqual(planned);
    expect(whole.outcome === 'prompt' && whole.planned.messages).not.toEqual(planned!.messages);
  });

  it('returns the record its request already holds for it, before anything else', async () => {
    const request = await storedRequest(layers);
    await markCancelled(redis, prefix, request.requestId);
    const [data, key] = callOf(2, 1, { requestId: request.requestId });
    const record = answered(1, 'the answer already paid for');
    await redis.hset(`${requestJobKey(prefix, request.requestId)}:processed`, key, JSON.stringify(record));
    const read = createCallPromptReader({ redis, prefix, config, schemas: jobDataSchemasFor(config) });
    expect(await read(data, key)).toEqual({ outcome: 'answered', record });
    // Read back from Redis, it is validated like any job data.
    await redis.hset(`${requestJobKey(prefix, request.requestId)}:processed`, key, '{"status":"won"}');
    await expect(read(data, key)).rejects.toThrow(/^invalid job data: model: /);
  });

  it('reports a cancelled request without building anything', async () => {
    const request = await storedRequest(layers);
    await markCancelled(redis, prefix, request.requestId);
    const read = createCallPromptReader({ redis, prefix, config, schemas: jobDataSchemasFor(config) });
    expect(await read(...callOf(2, 0, { requestId: request.requestId }))).toEqual({ outcome: 'cancelled' });
  });

  it('parses a request once while its stored data stays the same, and again when it changes', async () => {
    const request = await storedRequest(layers);
    const schemas = jobDataSchemasFor(config);
    let parses = 0;
    const counted = {
      ...schemas,
      request: {
        safeParse: (value: unknown) => {
          parses += 1;
          return schemas.request.safeParse(value);
        },
      } as typeof schemas.request,
    };
    const read = createCallPromptReader({ redis, prefix, config, schemas: counted });
    for (const [layer, agentIndex] of [
      [1, 0],
      [1, 1],
      [2, 0],
      [3, 0],
    ] as const) {
      await read(...callOf(layer, agentIndex, { requestId: request.requestId }));
    }
    expect(parses).toBe(1);
    // Rewritten in Redis (by anyone): parsed, and so validated, again.
    const changed = { ...request, messages: [{ role: 'user', content: 'What is a stack?' }] };
    await redis.hset(requestJobKey(prefix, request.requestId), 'data', JSON.stringify(changed));
    const prompt = await read(...callOf(1, 0, { requestId: request.requestId }));
    expect(parses).toBe(2);
    expect(JSON.stringify(prompt)).toContain('What is a stack?');
  });

  it('refuses stored layers that are not what the orchestrator writes, naming the field', async () => {
    const forged = [{ ...layers[0], calls: [{ ...layers[0]!.calls[0], output: 42 }] }];
    const request = await storedRequest(forged);
    const read = createCallPromptReader({ redis, prefix, config, schemas: jobDataSchemasFor(config) });
    await expect(read(...callOf(2, 0, { requestId: request.requestId }))).rejects.toThrow(
      /^invalid job data: layers\.0\.calls\.0\.output: /,
    );
  });
});
