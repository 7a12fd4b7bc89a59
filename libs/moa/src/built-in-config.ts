import { DEFAULT_REFERENCE_PROMPT } from './references.js';
import type { AgentConfig, ModelPricing, MoaConfig, PresetConfig, ProviderConfig } from './types.js';

/** Freezes a value and everything inside it, so shared built-ins cannot be changed by a caller by accident. */
function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}

/** Defaults filled in for every field a config file (or a built-in) leaves out. */
export const CONFIG_DEFAULTS = deepFreeze({
  provider: { concurrency: 32, timeoutMs: 120_000, maxAttempts: 3 },
  agent: { temperature: 0.7, proposerMaxTokens: 512, aggregatorMaxTokens: 2048 },
  preset: { minProposers: 1, layerTimeoutMs: 0 },
  defaultPreset: 'moa',
  // Per tenant, generous enough to go unnoticed until one tenant would crowd out the rest.
  quotas: {
    maxActiveJobs: 1000,
    maxActiveBatchItems: 200_000,
    maxFileBytes: 2 * 1024 * 1024 * 1024,
    maxStreams: 200,
  },
  webhooks: {
    allowHosts: [] as string[],
    // Then hourly until the horizon; the last step is the steady-state interval.
    retryScheduleMs: [1000, 5000, 30_000, 120_000, 600_000, 1_800_000, 3_600_000],
    retryHorizonMs: 86_400_000,
  },
});

/** A built-in provider with the default limits. */
function provider(name: string, baseURL: string, apiKeyEnv: string | undefined): ProviderConfig {
  return { name, baseURL, ...(apiKeyEnv === undefined ? {} : { apiKeyEnv }), ...CONFIG_DEFAULTS.provider };
}

/** Providers available without a config file; keys are the names used in model ids. */
export const BUILT_IN_PROVIDERS: Readonly<Record<string, ProviderConfig>> = deepFreeze({
  together: provider('together', 'https://api.together.xyz/v1', 'TOGETHER_API_KEY'),
  openai: provider('openai', 'https://api.openai.com/v1', 'OPENAI_API_KEY'),
  groq: provider('groq', 'https://api.groq.com/openai/v1', 'GROQ_API_KEY'),
  openrouter: provider('openrouter', 'https://openrouter.ai/api/v1', 'OPENROUTER_API_KEY'),
  // A local server needs no key.
  ollama: provider('ollama', 'http://127.0.0.1:11434/v1', undefined),
});

/** A price in USD per million input and output tokens. */
function price(inputCostPerMTok: number, outputCostPerMTok: number): ModelPricing {
  return { inputCostPerMTok, outputCostPerMTok };
}

/**
 * Public list prices (USD per 1M tokens) of common models, keyed by
 * `<provider>/<model>`. A config file adds or replaces entries; a model without
 * an entry is still called, and its cost is reported as null.
 */
export const BUILT_IN_MODELS: Readonly<Record<string, ModelPricing>> = deepFreeze({
  'together/Qwen/Qwen2.5-72B-Instruct-Turbo': price(1.2, 1.2),
  'together/Qwen/Qwen2.5-7B-Instruct-Turbo': price(0.3, 0.3),
  'together/Qwen/Qwen3-235B-A22B-Instruct-2507-tput': price(0.2, 0.6),
  'together/meta-llama/Llama-3.3-70B-Instruct-Turbo': price(0.88, 0.88),
  'together/meta-llama/Meta-Llama-3.1-405B-Instruct-Turbo': price(3.5, 3.5),
  'together/meta-llama/Meta-Llama-3.1-8B-Instruct-Turbo': price(0.18, 0.18),
  'together/deepseek-ai/DeepSeek-V3': price(1.25, 1.25),
  'openai/gpt-4o': price(2.5, 10),
  'openai/gpt-4o-mini': price(0.15, 0.6),
  'openai/gpt-4.1': price(2, 8),
  'openai/gpt-4.1-mini': price(0.4, 1.6),
  'openai/gpt-4.1-nano': price(0.1, 0.4),
  'groq/llama-3.3-70b-versatile': price(0.59, 0.79),
  'groq/llama-3.1-8b-instant': price(0.05, 0.08),
});

/** A proposer with the default sampling settings. */
function proposer(model: string): AgentConfig {
  return {
    model,
    temperature: CONFIG_DEFAULTS.agent.temperature,
    maxTokens: CONFIG_DEFAULTS.agent.proposerMaxTokens,
  };
}

/** An aggregator with the default sampling settings (a longer answer than a proposer's). */
function aggregator(model: string): AgentConfig {
  return {
    model,
    temperature: CONFIG_DEFAULTS.agent.temperature,
    maxTokens: CONFIG_DEFAULTS.agent.aggregatorMaxTokens,
  };
}

const QWEN_72B = 'together/Qwen/Qwen2.5-72B-Instruct-Turbo';

/** Current open models on Together standing in for the paper's proposers. */
const OPEN_PROPOSERS = [
  QWEN_72B,
  'together/meta-llama/Llama-3.3-70B-Instruct-Turbo',
  'together/deepseek-ai/DeepSeek-V3',
  'together/Qwen/Qwen3-235B-A22B-Instruct-2507-tput',
];

/** Self-MoA draws this many samples of one model, as in the paper's ablation. */
const SELF_MOA_SAMPLES = 6;

/** A preset with the default minProposers, layer timeout and reference prompt. */
function preset(
  name: string,
  description: string,
  layers: AgentConfig[][],
  aggregatorAgent: AgentConfig,
): PresetConfig {
  return {
    name,
    description,
    layers,
    aggregator: aggregatorAgent,
    ...CONFIG_DEFAULTS.preset,
    referencePrompt: DEFAULT_REFERENCE_PROMPT,
  };
}

/** Presets available without a config file; keys are the names clients pass as `preset` or `model`. */
export const BUILT_IN_PRESETS: Readonly<Record<string, PresetConfig>> = deepFreeze({
  moa: preset(
    'moa',
    'Mixture-of-Agents as in the paper: 2 proposer layers of 4 open models on Together, aggregated by Qwen2.5-72B.',
    [OPEN_PROPOSERS.map(proposer), OPEN_PROPOSERS.map(proposer)],
    aggregator(QWEN_72B),
  ),
  'moa-lite': preset(
    'moa-lite',
    'MoA-Lite: 1 proposer layer of 4 open models on Together, aggregated by Qwen2.5-72B; cheaper and faster.',
    [OPEN_PROPOSERS.map(proposer)],
    aggregator(QWEN_72B),
  ),
  'self-moa': preset(
    'self-moa',
    'Self-MoA: Qwen2.5-72B sampled 6 times at temperature 0.7, then aggregated by itself.',
    [Array.from({ length: SELF_MOA_SAMPLES }, () => proposer(QWEN_72B))],
    aggregator(QWEN_72B),
  ),
});

/**
 * The configuration used without a config file: built-in providers, prices and
 * presets. Returns a fresh deep copy each call, so the caller may change it
 * (the config loader merges a file into it) without touching the built-ins.
 */
export function builtInConfig(): MoaConfig {
  return {
    providers: structuredClone(BUILT_IN_PROVIDERS),
    models: structuredClone(BUILT_IN_MODELS),
    presets: structuredClone(BUILT_IN_PRESETS),
    defaultPreset: CONFIG_DEFAULTS.defaultPreset,
    webhooks: structuredClone(CONFIG_DEFAULTS.webhooks),
    tenants: {},
    quotas: { ...CONFIG_DEFAULTS.quotas },
  };
}
