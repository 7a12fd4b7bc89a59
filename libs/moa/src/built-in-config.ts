import { DEFAULT_REFERENCE_PROMPT } from './references.js';
import type {
  AgentConfig,
  ModelConfig,
  MoaConfig,
  PresetConfig,
  ProviderConfig,
  ReferenceFormat,
} from './types.js';

/** Freezes a value and everything inside it, so shared built-ins cannot be changed by a caller by accident. */
function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}

/**
 * The `created` of a preset that does not give one (and of the built-ins):
 * 2025-12-01T00:00:00Z, in epoch seconds.
 */
export const PRESET_CREATED_DEFAULT = 1_764_547_200;

/** Defaults filled in for every field a config file (or a built-in) leaves out. */
export const CONFIG_DEFAULTS = deepFreeze({
  provider: { concurrency: 32, timeoutMs: 120_000, maxAttempts: 3 },
  agent: { temperature: 0.7, proposerMaxTokens: 512, aggregatorMaxTokens: 2048 },
  preset: {
    minProposers: 1,
    layerTimeoutMs: 0,
    referenceFormat: 'tagged' as ReferenceFormat,
    // A fixed date, not the process start: `/v1/models` must not change at every restart.
    created: PRESET_CREATED_DEFAULT,
  },
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

/** A price in USD per million input and output tokens, and the context window in tokens. */
function model(inputCostPerMTok: number, outputCostPerMTok: number, contextWindow: number): ModelConfig {
  return { inputCostPerMTok, outputCostPerMTok, contextWindow };
}

/**
 * Public list prices (USD per 1M tokens) and context windows (tokens, prompt
 * and completion together, as each provider serves the model) of common
 * models, keyed by `<provider>/<model>`. A config file adds or replaces
 * entries; a model without an entry is still called, and its cost is
 * reported as null.
 *
 * Context windows are the providers' own figures: Together's serverless
 * models table (docs.together.ai/docs/serverless-models), OpenAI's model
 * pages, Groq's models page. Providers change them for the same model id, so
 * they are the provider's word at the time of writing, not a guarantee.
 */
export const BUILT_IN_MODELS: Readonly<Record<string, ModelConfig>> = deepFreeze({
  'together/Qwen/Qwen2.5-72B-Instruct-Turbo': model(1.2, 1.2, 32_768),
  'together/Qwen/Qwen2.5-7B-Instruct-Turbo': model(0.3, 0.3, 32_768),
  'together/Qwen/Qwen3-235B-A22B-Instruct-2507-tput': model(0.2, 0.6, 262_144),
  'together/meta-llama/Llama-3.3-70B-Instruct-Turbo': model(0.88, 0.88, 131_072),
  // Together lists 130,815 for this one, not 131,072.
  'together/meta-llama/Meta-Llama-3.1-405B-Instruct-Turbo': model(3.5, 3.5, 130_815),
  'together/meta-llama/Meta-Llama-3.1-8B-Instruct-Turbo': model(0.18, 0.18, 131_072),
  // Uncertain: Together's table has said 16,384 and, since this id serves the
  // -0324 weights, 163,839; DeepSeek's own API serves the model with 128K.
  'together/deepseek-ai/DeepSeek-V3': model(1.25, 1.25, 163_839),
  'openai/gpt-4o': model(2.5, 10, 128_000),
  'openai/gpt-4o-mini': model(0.15, 0.6, 128_000),
  'openai/gpt-4.1': model(2, 8, 1_047_576),
  'openai/gpt-4.1-mini': model(0.4, 1.6, 1_047_576),
  'openai/gpt-4.1-nano': model(0.1, 0.4, 1_047_576),
  'groq/llama-3.3-70b-versatile': model(0.59, 0.79, 131_072),
  'groq/llama-3.1-8b-instant': model(0.05, 0.08, 131_072),
});

/**
 * Sampling of every call of the built-in presets, proposers and aggregator
 * alike: the reference implementation's AlpacaEval 2.0 run
 * (togethercomputer/MoA, `generate_for_alpaca_eval.py`: `temperature=0.7` and
 * `max_tokens=2048` for each reference model, and for the aggregator the
 * same values as the defaults of `utils.py` `generate_with_references`).
 * Agents of a config file keep DESIGN's defaults (512 tokens for a proposer).
 */
export const BUILT_IN_SAMPLING = deepFreeze({ temperature: 0.7, maxTokens: 2048 });

/** An agent of a built-in preset, sampled as in the reference's AlpacaEval run. */
function agent(modelId: string): AgentConfig {
  return { model: modelId, ...BUILT_IN_SAMPLING };
}

const QWEN_72B = 'together/Qwen/Qwen2.5-72B-Instruct-Turbo';
/**
 * The strongest built-in open model (Qwen's model card reports it ahead of
 * DeepSeek-V3-0324 and GPT-4o-0327 on Arena-Hard v2, a judge-based benchmark
 * close to AlpacaEval), and the cheapest of the proposers: $0.20 in and
 * $0.60 out per 1M tokens, against $0.88 to $1.25 for the others.
 */
const QWEN3_235B = 'together/Qwen/Qwen3-235B-A22B-Instruct-2507-tput';
const GPT_4O = 'openai/gpt-4o';

/** Current open models on Together standing in for the paper's proposers. */
const OPEN_PROPOSERS = [
  QWEN_72B,
  'together/meta-llama/Llama-3.3-70B-Instruct-Turbo',
  'together/deepseek-ai/DeepSeek-V3',
  QWEN3_235B,
];

/** Self-MoA draws this many samples of one model, as in the paper's ablation. */
const SELF_MOA_SAMPLES = 6;

/**
 * Half the agents of the smallest layer, rounded up: a layer that loses more
 * (a retired model answering 404, a provider outage) fails the request
 * rather than silently aggregating a much smaller mixture.
 */
function halfOfSmallestLayer(layers: AgentConfig[][]): number {
  return Math.ceil(Math.min(...layers.map((layer) => layer.length)) / 2);
}

/** A preset with the default layer timeout, reference prompt and format, and minProposers at half the proposers. */
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
    minProposers: halfOfSmallestLayer(layers),
    referencePrompt: DEFAULT_REFERENCE_PROMPT,
  };
}

/**
 * Presets available without a config file; keys are the names clients pass
 * as `preset` or `model`. Every call samples at temperature 0.7 with up to
 * 2048 tokens ({@link BUILT_IN_SAMPLING}); references use the default
 * `tagged` format.
 */
export const BUILT_IN_PRESETS: Readonly<Record<string, PresetConfig>> = deepFreeze({
  moa: preset(
    'moa',
    'Mixture-of-Agents as in the paper: 2 proposer layers of 4 open models on Together, aggregated by Qwen2.5-72B.',
    [OPEN_PROPOSERS.map(agent), OPEN_PROPOSERS.map(agent)],
    agent(QWEN_72B),
  ),
  'moa-lite': preset(
    'moa-lite',
    'MoA-Lite: 1 proposer layer of 4 open models on Together, aggregated by Qwen2.5-72B; cheaper and faster.',
    [OPEN_PROPOSERS.map(agent)],
    agent(QWEN_72B),
  ),
  'self-moa': preset(
    'self-moa',
    'Self-MoA: Qwen3-235B-A22B-Instruct-2507, the strongest built-in open model, sampled 6 times, then aggregated by itself.',
    [Array.from({ length: SELF_MOA_SAMPLES }, () => agent(QWEN3_235B))],
    agent(QWEN3_235B),
  ),
  'moa-gpt-4o': preset(
    'moa-gpt-4o',
    "The paper's MoA w/ GPT-4o: moa's 2 proposer layers of 4 open models on Together, aggregated by GPT-4o (needs OPENAI_API_KEY).",
    [OPEN_PROPOSERS.map(agent), OPEN_PROPOSERS.map(agent)],
    agent(GPT_4O),
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
