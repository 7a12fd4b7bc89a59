import { parseMoaConfig, type PresetConfig } from '@moa-queue/moa';
import { describe, expect, it } from 'vitest';
import type { z } from 'zod';
import { batchItemRequestId } from './batch-keys.js';
import { callJobId, parseCallJobId } from './job-ids.js';
import { requestCallIds } from './cancel-marker.js';
import {
  batchJobDataSchema,
  callJobDataSchema,
  deadlineJobDataSchema,
  jobDataSchemasFor,
  JOB_DATA_LIMITS,
  requestJobDataSchema,
  webhookJobDataSchema,
} from './job-data-schemas.js';
import type { CallJobData, DeadlineJobData, RequestJobData } from './payloads.js';

const config = parseMoaConfig({
  providers: { fake: { baseURL: 'http://127.0.0.1:1/v1' } },
  models: { 'fake/alpha': { inputCostPerMTok: 1, outputCostPerMTok: 1 } },
  presets: {
    duo: {
      layers: [[{ model: 'fake/alpha' }, { model: 'fake/beta' }]],
      aggregator: { model: 'fake/aggregator' },
    },
  },
  defaultPreset: 'duo',
});
const schemas = jobDataSchemasFor(config);
const preset = (): PresetConfig => structuredClone(config.presets.duo!);

function requestData(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    requestId: 'job_abc123',
    tenant: 'team-a',
    preset: preset(),
    messages: [{ role: 'user', content: 'Hello?' }],
    metadata: { purpose: 'test' },
    createdAt: 1_764_000_000_000,
    ...overrides,
  };
}

function callData(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    requestId: 'job_abc123',
    presetName: 'duo',
    layer: 1,
    role: 'proposer',
    agentIndex: 0,
    agent: { model: 'fake/alpha', temperature: 0.7, maxTokens: 512 },
    ...overrides,
  };
}

function deadlineData(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    requestId: 'job_abc123',
    layer: 1,
    layerTimeoutMs: 1000,
    calls: [
      { jobId: 'job_abc123-L1-A0', provider: 'fake' },
      { jobId: 'job_abc123-L1-A1', provider: 'fake' },
    ],
    ...overrides,
  };
}

/** The dotted path of every issue, for asserting which field was named. */
function pathsOf(schema: z.ZodType, data: unknown): string[] {
  const parsed = schema.safeParse(data);
  return parsed.success ? [] : parsed.error.issues.map((issue) => issue.path.join('.'));
}

describe('job data schemas', () => {
  it('accept what our producers write, unchanged', () => {
    const request = requestData({
      webhook: { url: 'https://example.com/hook' },
      stream: true,
      source: 'chat',
    }) as unknown as RequestJobData;
    expect(schemas.request.parse(request)).toEqual(request);
    expect(requestJobDataSchema.parse(request)).toEqual(request);
    const batchId = 'batch_Abc123';
    const item = requestData({
      requestId: batchItemRequestId(batchId, 41),
      source: 'batch',
      batch: { id: batchId, customId: 'line-42' },
    });
    expect(schemas.request.parse(item)).toEqual(item);
    const call = callData() as unknown as CallJobData;
    expect(schemas.call.parse(call)).toEqual(call);
    const again = callData({ layer: 2, role: 'aggregator', round: 1, referenceShare: 0.5 });
    expect(schemas.call.parse(again)).toEqual(again);
    const deadline = deadlineData() as unknown as DeadlineJobData;
    expect(schemas.deadline.parse(deadline)).toEqual(deadline);
    expect(schemas.webhook.parse({ requestId: 'job_abc123', url: 'http://127.0.0.1:9/x' })).toEqual({
      requestId: 'job_abc123',
      url: 'http://127.0.0.1:9/x',
    });
    expect(schemas.batch.parse({ batchId })).toEqual({ batchId });
  });

  it('treat a request from before tenants as the default tenant', () => {
    const { tenant: _tenant, ...old } = requestData();
    expect(schemas.request.parse(old).tenant).toBe('default');
  });

  it('treat a preset from before reference formats as tagged', () => {
    const { referenceFormat: _format, ...old } = preset();
    expect(schemas.request.parse(requestData({ preset: old })).preset.referenceFormat).toBe('tagged');
    const paper = { ...preset(), referenceFormat: 'paper' };
    expect(schemas.request.parse(requestData({ preset: paper })).preset.referenceFormat).toBe('paper');
  });

  it('strip keys our producers do not write', () => {
    const parsed = schemas.request.parse(requestData({ extra: 'x', preset: { ...preset(), evil: true } }));
    expect(parsed).not.toHaveProperty('extra');
    expect(parsed.preset).not.toHaveProperty('evil');
  });

  it.each([
    ['requestId', requestData({ requestId: 'job_../../etc' })],
    ['tenant', requestData({ tenant: 'Team A' })],
    ['preset', requestData({ preset: undefined })],
    ['preset.name', requestData({ preset: { ...preset(), name: 42 } })],
    ['preset.layers', requestData({ preset: { ...preset(), layers: [] } })],
    ['preset.layers.0', requestData({ preset: { ...preset(), layers: [[]] } })],
    [
      'preset.layers.0.1.model',
      requestData({ preset: { ...preset(), layers: [[preset().aggregator, {}]] } }),
    ],
    [
      'preset.layers.0.0.model',
      requestData({ preset: { ...preset(), layers: [[{ ...preset().aggregator, model: 'no-slash' }]] } }),
    ],
    [
      'preset.aggregator.temperature',
      requestData({ preset: { ...preset(), aggregator: { ...preset().aggregator, temperature: '0.7' } } }),
    ],
    [
      'preset.aggregator.maxTokens',
      requestData({ preset: { ...preset(), aggregator: { ...preset().aggregator, maxTokens: 1.5 } } }),
    ],
    ['preset.minProposers', requestData({ preset: { ...preset(), minProposers: 0 } })],
    ['preset.layerTimeoutMs', requestData({ preset: { ...preset(), layerTimeoutMs: -1 } })],
    ['preset.referencePrompt', requestData({ preset: { ...preset(), referencePrompt: null } })],
    ['preset.referenceFormat', requestData({ preset: { ...preset(), referenceFormat: 'html' } })],
    [
      'preset.layers',
      requestData({
        preset: {
          ...preset(),
          layers: Array.from({ length: JOB_DATA_LIMITS.maxLayers + 1 }, () => [preset().aggregator]),
        },
      }),
    ],
    ['messages', requestData({ messages: 'Hello?' })],
    ['messages', requestData({ messages: [] })],
    ['messages.0.role', requestData({ messages: [{ role: 'tool', content: 'x' }] })],
    ['messages.0.content', requestData({ messages: [{ role: 'user', content: ['x'] }] })],
    [
      'messages.0.content',
      requestData({
        messages: [{ role: 'user', content: 'x'.repeat(JOB_DATA_LIMITS.maxContentCharacters + 1) }],
      }),
    ],
    ['metadata', requestData({ metadata: undefined })],
    ['metadata.n', requestData({ metadata: { n: 1 } })],
    [
      'metadata',
      requestData({ metadata: Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${i}`, 'v'])) }),
    ],
    ['webhook.url', requestData({ webhook: { url: 'file:///etc/passwd' } })],
    ['createdAt', requestData({ createdAt: 'yesterday' })],
    ['stream', requestData({ stream: 'yes' })],
    ['source', requestData({ source: 'bull-board' })],
    ['batch.id', requestData({ batch: { id: 'batch_Other1', customId: 'x' } })],
    ['batch.customId', requestData({ requestId: 'job_Abcx0', batch: { id: 'batch_Abc', customId: '' } })],
  ])('refuse a request whose %s is malformed', (path, data) => {
    expect(pathsOf(schemas.request, data)[0]).toBe(path);
  });

  it('refuse a request that is not an object, naming no field', () => {
    expect(pathsOf(schemas.request, 'hello')).toEqual(['']);
    expect(pathsOf(schemas.request, null)).toEqual(['']);
  });

  it.each([
    ['requestId', callData({ requestId: 42 })],
    ['presetName', callData({ presetName: 'Evil Preset' })],
    ['layer', callData({ layer: 'one' })],
    ['layer', callData({ layer: 0 })],
    ['role', callData({ role: 'boss' })],
    ['agentIndex', callData({ agentIndex: -1 })],
    ['agent.model', callData({ agent: { temperature: 0.7, maxTokens: 1 } })],
    ['referenceShare', callData({ layer: 2, role: 'aggregator', round: 1, referenceShare: 1 })],
  ])('refuse a call whose %s is malformed', (path, data) => {
    expect(pathsOf(schemas.call, data)[0]).toBe(path);
    expect(pathsOf(callJobDataSchema, data)[0]).toBe(path);
  });

  it.each([
    ['layerTimeoutMs', deadlineData({ layerTimeoutMs: 0 })],
    ['calls', deadlineData({ calls: [] })],
    ['calls.0.provider', deadlineData({ calls: [{ jobId: 'job_abc123-L1-A0', provider: '__proto__' }] })],
    ['calls.0.jobId', deadlineData({ calls: [{ jobId: 'job_other-L1-A0', provider: 'fake' }] })],
    ['calls.0.jobId', deadlineData({ calls: [{ jobId: 'job_abc123-L2-A0', provider: 'fake' }] })],
    ['calls.0.jobId', deadlineData({ calls: [{ jobId: 'job_abc123-L1-A01', provider: 'fake' }] })],
  ])('refuse a deadline whose %s is malformed', (path, data) => {
    expect(pathsOf(schemas.deadline, data)[0]).toBe(path);
    expect(pathsOf(deadlineJobDataSchema, data)[0]).toBe(path);
  });

  it('refuse malformed webhook and batch jobs', () => {
    expect(pathsOf(webhookJobDataSchema, { requestId: 'job_a', url: 'javascript:alert(1)' })).toEqual([
      'url',
    ]);
    expect(pathsOf(webhookJobDataSchema, { url: 'https://example.com' })).toEqual(['requestId']);
    expect(pathsOf(batchJobDataSchema, { batchId: 'batch_../x' })).toEqual(['batchId']);
    expect(pathsOf(batchJobDataSchema, {})).toEqual(['batchId']);
  });

  it('do not let __proto__ keys pollute anything', () => {
    const json =
      '{"requestId":"job_abc123","__proto__":{"polluted":"yes"},"preset":' +
      JSON.stringify(preset()).replace('{', '{"__proto__":{"polluted":"yes"},') +
      ',"messages":[{"role":"user","content":"x","__proto__":{"polluted":"yes"}}],' +
      '"metadata":{"__proto__":{"polluted":"yes"},"constructor":"c","k":"v"},"createdAt":1}';
    const raw = JSON.parse(json) as Record<string, unknown>;
    expect(Object.hasOwn(raw, '__proto__')).toBe(true);
    const parsed = schemas.request.parse(raw);
    for (const value of [parsed, parsed.preset, parsed.messages[0], parsed.metadata]) {
      expect(Object.getPrototypeOf(value)).toBe(Object.prototype);
      expect((value as Record<string, unknown>).polluted).toBeUndefined();
      expect(Object.hasOwn(value as object, '__proto__')).toBe(false);
    }
    expect(parsed.metadata).toEqual({ constructor: 'c', k: 'v' });
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});

describe('job data checked against the config', () => {
  it('accepts a snapshot that differs from the configured preset of its name', () => {
    const changed = {
      ...preset(),
      aggregator: { ...preset().aggregator, maxTokens: 77, model: 'fake/other' },
    };
    expect(schemas.request.parse(requestData({ preset: changed })).preset).toEqual(changed);
  });

  it('refuses a preset name that is not configured, even one on Object.prototype', () => {
    for (const name of ['evil-preset', 'constructor']) {
      const parsed = schemas.request.safeParse(requestData({ preset: { ...preset(), name } }));
      expect(parsed.success).toBe(false);
      expect(parsed.error?.issues[0]).toMatchObject({
        path: ['preset', 'name'],
        message: `unknown preset "${name}": not in the config`,
      });
    }
    expect(pathsOf(schemas.call, callData({ presetName: 'constructor' }))).toEqual(['presetName']);
  });

  it('refuses an agent whose provider is not configured, naming the agent', () => {
    const evil = { model: 'evil/steal-money', temperature: 0.7, maxTokens: 512 };
    const prototypeName = { ...evil, model: 'constructor/x' };
    expect(
      pathsOf(
        schemas.request,
        requestData({ preset: { ...preset(), layers: [[preset().aggregator, evil]] } }),
      ),
    ).toEqual(['preset.layers.0.1.model']);
    expect(
      pathsOf(schemas.request, requestData({ preset: { ...preset(), aggregator: prototypeName } })),
    ).toEqual(['preset.aggregator.model']);
    expect(pathsOf(schemas.call, callData({ agent: evil }))).toEqual(['agent.model']);
    expect(
      pathsOf(schemas.deadline, deadlineData({ calls: [{ jobId: 'job_abc123-L1-A0', provider: 'evil' }] })),
    ).toEqual(['calls.0.provider']);
    // The structural schemas alone know nothing of the config.
    expect(pathsOf(callJobDataSchema, callData({ agent: evil }))).toEqual([]);
  });

  it('reports every config problem of an attacker preset, the name first', () => {
    const evil = { model: 'evil/steal-money', temperature: 0.7, maxTokens: 512 };
    const paths = pathsOf(
      schemas.request,
      requestData({ preset: { ...preset(), name: 'evil-preset', layers: [[evil]], aggregator: evil } }),
    );
    expect(paths).toEqual(['preset.name', 'preset.layers.0.0.model', 'preset.aggregator.model']);
  });

  it('takes round 1 on an aggregator call only', () => {
    const aggregator = callData({ layer: 2, role: 'aggregator', round: 1 });
    expect(schemas.call.parse(aggregator)).toMatchObject({ round: 1 });
    expect(pathsOf(schemas.call, callData({ round: 1 }))).toEqual(['round']);
    expect(pathsOf(schemas.call, { ...aggregator, round: 2 })).toEqual(['round']);
    expect(pathsOf(schemas.call, { ...aggregator, round: 0 })).toEqual(['round']);
    // A share of the reference budget below 1 is the round's only.
    expect(pathsOf(schemas.call, { ...aggregator, referenceShare: 0.5 })).toEqual([]);
    expect(pathsOf(schemas.call, callData({ layer: 2, role: 'aggregator', referenceShare: 0.5 }))).toEqual([
      'referenceShare',
    ]);
  });
});

describe('call job ids', () => {
  it('round-trip, an aggregator run again carrying its round', () => {
    expect(callJobId('job_a', 3, 0)).toBe('job_a-L3-A0');
    expect(callJobId('job_a', 3, 0, 1)).toBe('job_a-L3-A0-R1');
    expect(parseCallJobId('job_a-L3-A0')).toEqual({ requestId: 'job_a', layer: 3, agentIndex: 0, round: 0 });
    expect(parseCallJobId('job_a-L3-A0-R1')).toEqual({
      requestId: 'job_a',
      layer: 3,
      agentIndex: 0,
      round: 1,
    });
    expect(parseCallJobId('job_a-L3-A0-R0')).toBeUndefined();
  });

  it("lists every call a request may have, the aggregator's round included", () => {
    expect(requestCallIds('job_a', preset())).toEqual([
      'job_a-L1-A0',
      'job_a-L1-A1',
      'job_a-L2-A0',
      'job_a-L2-A0-R1',
    ]);
  });
});
