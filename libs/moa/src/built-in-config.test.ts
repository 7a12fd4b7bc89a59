import { describe, it, expect } from 'vitest';
import { BUILT_IN_MODELS, BUILT_IN_PRESETS, BUILT_IN_PROVIDERS, builtInConfig } from './built-in-config.js';
import { parseModelId } from './model-id.js';
import { DEFAULT_REFERENCE_PROMPT } from './references.js';

describe('built-in config', () => {
  it('has the documented providers with default limits', () => {
    expect(Object.keys(BUILT_IN_PROVIDERS)).toEqual(['together', 'openai', 'groq', 'openrouter', 'ollama']);
    expect(BUILT_IN_PROVIDERS.together).toEqual({
      name: 'together',
      baseURL: 'https://api.together.xyz/v1',
      apiKeyEnv: 'TOGETHER_API_KEY',
      concurrency: 32,
      timeoutMs: 120_000,
      maxAttempts: 3,
    });
    expect(BUILT_IN_PROVIDERS.groq?.baseURL).toBe('https://api.groq.com/openai/v1');
    expect(BUILT_IN_PROVIDERS.openrouter?.apiKeyEnv).toBe('OPENROUTER_API_KEY');
    expect(BUILT_IN_PROVIDERS.ollama).not.toHaveProperty('apiKeyEnv');
    expect(BUILT_IN_PROVIDERS.ollama?.requestsPerMinute).toBeUndefined();
  });

  it('gives every model of every built-in preset a price', () => {
    for (const preset of Object.values(BUILT_IN_PRESETS)) {
      for (const agent of [...preset.layers.flat(), preset.aggregator]) {
        expect(BUILT_IN_MODELS, `${preset.name}: ${agent.model}`).toHaveProperty([agent.model]);
      }
    }
  });

  it('keys every price by a valid model id of a built-in provider', () => {
    for (const modelId of Object.keys(BUILT_IN_MODELS)) {
      expect(Object.keys(BUILT_IN_PROVIDERS)).toContain(parseModelId(modelId).provider);
    }
  });

  it('shapes the presets as in the paper', () => {
    const { moa, 'moa-lite': moaLite, 'self-moa': selfMoa } = BUILT_IN_PRESETS;
    expect(moa?.layers.map((layer) => layer.length)).toEqual([4, 4]);
    expect(moaLite?.layers.map((layer) => layer.length)).toEqual([4]);
    expect(moa?.aggregator).toEqual({
      model: 'together/Qwen/Qwen2.5-72B-Instruct-Turbo',
      temperature: 0.7,
      maxTokens: 2048,
    });
    expect(selfMoa?.layers).toHaveLength(1);
    expect(selfMoa?.layers[0]).toHaveLength(6);
    expect(new Set(selfMoa?.layers[0]?.map((agent) => agent.model))).toEqual(
      new Set(['together/Qwen/Qwen2.5-72B-Instruct-Turbo']),
    );
    expect(selfMoa?.aggregator.model).toBe('together/Qwen/Qwen2.5-72B-Instruct-Turbo');
    for (const [name, preset] of Object.entries(BUILT_IN_PRESETS)) {
      expect(preset.name).toBe(name);
      expect(preset.description).toBeTruthy();
      expect(preset.minProposers).toBe(1);
      expect(preset.layerTimeoutMs).toBe(0);
      expect(preset.referencePrompt).toBe(DEFAULT_REFERENCE_PROMPT);
      for (const agent of preset.layers.flat())
        expect(agent).toMatchObject({ temperature: 0.7, maxTokens: 512 });
    }
  });

  it('returns a fresh deep copy every time', () => {
    const first = builtInConfig();
    expect(first.defaultPreset).toBe('moa');
    expect(first.webhooks).toEqual({
      allowHosts: [],
      retryScheduleMs: [1000, 5000, 30000, 120000, 600000, 1800000, 3600000],
      retryHorizonMs: 86400000,
    });
    first.presets.moa!.layers[0]![0]!.temperature = 2;
    first.webhooks.retryScheduleMs.push(1);
    first.providers.together!.concurrency = 1;
    const second = builtInConfig();
    expect(second.presets.moa?.layers[0]?.[0]?.temperature).toBe(0.7);
    expect(second.webhooks.retryScheduleMs).toHaveLength(7);
    expect(second.providers.together?.concurrency).toBe(32);
    expect(BUILT_IN_PRESETS.moa?.layers[0]?.[0]?.temperature).toBe(0.7);
  });

  it('freezes the shared built-ins', () => {
    expect(Object.isFrozen(BUILT_IN_PRESETS.moa?.layers[0]?.[0])).toBe(true);
    expect(Object.isFrozen(BUILT_IN_PROVIDERS.together)).toBe(true);
  });
});
