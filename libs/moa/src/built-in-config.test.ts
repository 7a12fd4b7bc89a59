import { describe, it, expect } from 'vitest';
import {
  BUILT_IN_MODELS,
  BUILT_IN_PRESETS,
  BUILT_IN_PROVIDERS,
  BUILT_IN_SAMPLING,
  builtInConfig,
} from './built-in-config.js';
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

  it('gives every built-in model a context window', () => {
    for (const [modelId, model] of Object.entries(BUILT_IN_MODELS)) {
      expect(Number.isInteger(model.contextWindow), modelId).toBe(true);
      expect(model.contextWindow, modelId).toBeGreaterThanOrEqual(32_768);
    }
    expect(BUILT_IN_MODELS['together/Qwen/Qwen2.5-72B-Instruct-Turbo']?.contextWindow).toBe(32_768);
    expect(BUILT_IN_MODELS['together/Qwen/Qwen3-235B-A22B-Instruct-2507-tput']?.contextWindow).toBe(262_144);
    expect(BUILT_IN_MODELS['openai/gpt-4o']?.contextWindow).toBe(128_000);
  });

  it('shapes the presets as in the paper', () => {
    const { moa, 'moa-lite': moaLite } = BUILT_IN_PRESETS;
    expect(Object.keys(BUILT_IN_PRESETS)).toEqual(['moa', 'moa-lite', 'self-moa', 'moa-gpt-4o']);
    expect(moa?.layers.map((layer) => layer.length)).toEqual([4, 4]);
    expect(moaLite?.layers.map((layer) => layer.length)).toEqual([4]);
    expect(moa?.aggregator).toEqual({
      model: 'together/Qwen/Qwen2.5-72B-Instruct-Turbo',
      temperature: 0.7,
      maxTokens: 2048,
    });
    expect(moaLite?.aggregator).toEqual(moa?.aggregator);
  });

  it('samples the strongest built-in model, Qwen3-235B-A22B-Instruct-2507, in self-moa', () => {
    const selfMoa = BUILT_IN_PRESETS['self-moa']!;
    const qwen3 = 'together/Qwen/Qwen3-235B-A22B-Instruct-2507-tput';
    expect(selfMoa.layers).toHaveLength(1);
    expect(selfMoa.layers[0]).toHaveLength(6);
    expect(new Set(selfMoa.layers[0]!.map((agent) => agent.model))).toEqual(new Set([qwen3]));
    expect(selfMoa.aggregator.model).toBe(qwen3);
    // The cheapest of the proposers too.
    const outputPrices = BUILT_IN_PRESETS.moa!.layers[0]!.map(
      (agent) => BUILT_IN_MODELS[agent.model]!.outputCostPerMTok,
    );
    expect(BUILT_IN_MODELS[qwen3]!.outputCostPerMTok).toBe(Math.min(...outputPrices));
  });

  it("adds the paper's MoA w/ GPT-4o: moa's proposers, GPT-4o aggregating", () => {
    const { moa, 'moa-gpt-4o': moaGpt4o } = BUILT_IN_PRESETS;
    expect(moaGpt4o?.layers).toEqual(moa?.layers);
    expect(moaGpt4o?.aggregator).toEqual({ model: 'openai/gpt-4o', temperature: 0.7, maxTokens: 2048 });
    expect(moaGpt4o?.minProposers).toBe(moa?.minProposers);
  });

  it("samples every call as the reference's AlpacaEval run: temperature 0.7, 2048 tokens", () => {
    expect(BUILT_IN_SAMPLING).toEqual({ temperature: 0.7, maxTokens: 2048 });
    for (const [name, preset] of Object.entries(BUILT_IN_PRESETS)) {
      expect(preset.name).toBe(name);
      expect(preset.description).toBeTruthy();
      expect(preset.layerTimeoutMs).toBe(0);
      expect(preset.referencePrompt).toBe(DEFAULT_REFERENCE_PROMPT);
      expect(preset.referenceFormat).toBe('tagged');
      for (const agent of [...preset.layers.flat(), preset.aggregator]) {
        expect(agent, name).toEqual({ model: agent.model, temperature: 0.7, maxTokens: 2048 });
      }
    }
  });

  it('requires at least half the proposers of every layer (rounded up) to succeed', () => {
    const minProposers = Object.fromEntries(
      Object.entries(BUILT_IN_PRESETS).map(([name, preset]) => [name, preset.minProposers]),
    );
    expect(minProposers).toEqual({ moa: 2, 'moa-lite': 2, 'self-moa': 3, 'moa-gpt-4o': 2 });
    for (const preset of Object.values(BUILT_IN_PRESETS)) {
      for (const layer of preset.layers) {
        expect(preset.minProposers).toBeGreaterThanOrEqual(Math.ceil(layer.length / 2));
        expect(preset.minProposers).toBeLessThanOrEqual(layer.length);
      }
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
