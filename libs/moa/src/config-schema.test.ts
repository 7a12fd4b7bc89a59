import { describe, it, expect } from 'vitest';
import { CONFIG_NAME_PATTERN, moaConfigFileSchema } from './config-schema.js';

/** The dotted paths of the issues zod reports for a config object. */
function issuePaths(raw: unknown): string[] {
  const result = moaConfigFileSchema.safeParse(raw);
  return result.success ? [] : result.error.issues.map((issue) => issue.path.join('.'));
}

const agent = { model: 'together/Qwen/Qwen2.5-72B-Instruct-Turbo' };

describe('moaConfigFileSchema', () => {
  it('accepts an empty file and the example of DESIGN §3', () => {
    expect(moaConfigFileSchema.safeParse({}).success).toBe(true);
    const example = {
      providers: {
        together: {
          baseURL: 'https://api.together.xyz/v1',
          apiKeyEnv: 'TOGETHER_API_KEY',
          concurrency: 32,
          requestsPerMinute: 600,
          timeoutMs: 120000,
          maxAttempts: 3,
        },
        ollama: { baseURL: 'http://127.0.0.1:11434/v1' },
      },
      models: {
        'together/Qwen/Qwen2.5-72B-Instruct-Turbo': { inputCostPerMTok: 1.2, outputCostPerMTok: 1.2 },
      },
      presets: {
        moa: {
          layers: [
            [agent, { model: 'together/meta-llama/Llama-3.3-70B-Instruct-Turbo', temperature: 0.7 }],
            [agent],
          ],
          aggregator: { ...agent, maxTokens: 2048 },
          minProposers: 1,
          layerTimeoutMs: 0,
        },
      },
      defaultPreset: 'moa',
      webhooks: { allowHosts: [], retryScheduleMs: [1000, 5000], retryHorizonMs: 86400000 },
    };
    expect(moaConfigFileSchema.parse(example)).toEqual(example);
  });

  it('rejects unknown keys at every level', () => {
    expect(moaConfigFileSchema.safeParse({ preset: {} }).success).toBe(false);
    expect(moaConfigFileSchema.safeParse({ providers: { together: { concurency: 1 } } }).success).toBe(false);
    expect(
      moaConfigFileSchema.safeParse({
        presets: { p: { layers: [[{ ...agent, temp: 1 }]], aggregator: agent } },
      }).success,
    ).toBe(false);
  });

  it.each([
    [{ providers: { x: { baseURL: 'ftp://host/v1' } } }, 'providers.x.baseURL'],
    [{ providers: { x: { baseURL: 'not a url' } } }, 'providers.x.baseURL'],
    [{ providers: { x: { baseURL: 'http://h', concurrency: 0 } } }, 'providers.x.concurrency'],
    [{ providers: { x: { baseURL: 'http://h', concurrency: 1.5 } } }, 'providers.x.concurrency'],
    [{ providers: { x: { baseURL: 'http://h', maxAttempts: 21 } } }, 'providers.x.maxAttempts'],
    [{ providers: { x: { baseURL: 'http://h', requestsPerMinute: 0 } } }, 'providers.x.requestsPerMinute'],
    [{ providers: { x: { baseURL: 'http://h', timeoutMs: 0 } } }, 'providers.x.timeoutMs'],
    [
      { models: { 'openai/gpt-4o': { inputCostPerMTok: -1, outputCostPerMTok: 1 } } },
      'models.openai/gpt-4o.inputCostPerMTok',
    ],
    [{ presets: { p: { layers: [], aggregator: agent } } }, 'presets.p.layers'],
    [{ presets: { p: { layers: [[]], aggregator: agent } } }, 'presets.p.layers.0'],
    [
      { presets: { p: { layers: [[{ model: 'no-slash' }]], aggregator: agent } } },
      'presets.p.layers.0.0.model',
    ],
    [
      { presets: { p: { layers: [[{ ...agent, temperature: -0.1 }]], aggregator: agent } } },
      'presets.p.layers.0.0.temperature',
    ],
    [
      { presets: { p: { layers: [[agent]], aggregator: { ...agent, maxTokens: 0 } } } },
      'presets.p.aggregator.maxTokens',
    ],
    [{ presets: { p: { layers: [[agent]], aggregator: agent, minProposers: 0 } } }, 'presets.p.minProposers'],
    [
      { presets: { p: { layers: [[agent]], aggregator: agent, layerTimeoutMs: -1 } } },
      'presets.p.layerTimeoutMs',
    ],
    [{ webhooks: { retryScheduleMs: [] } }, 'webhooks.retryScheduleMs'],
  ])('rejects %j at %s', (raw, path) => {
    expect(issuePaths(raw)).toContain(path);
  });

  it('restricts provider and preset names', () => {
    for (const name of ['together', 'moa-lite', 'self.moa_2', '0x'])
      expect(CONFIG_NAME_PATTERN.test(name)).toBe(true);
    for (const name of ['Moa', '-moa', 'moa lite', 'a/b', '', '__proto__']) {
      expect(CONFIG_NAME_PATTERN.test(name)).toBe(false);
    }
    expect(issuePaths({ presets: { 'My Preset': { layers: [[agent]], aggregator: agent } } })).toEqual([
      'presets.My Preset',
    ]);
  });
});
