import { createFakeProvider, type FakeProvider } from '@moa-queue/fake-provider';

/** How the demo reaches LLMs: real providers, a local Ollama, or the bundled simulation. */
export interface ProviderMode {
  kind: 'real' | 'ollama' | 'simulated';
  /** One line telling the person what is happening. */
  description: string;
  /** Config file content for the API and workers. */
  configFile: Record<string, unknown>;
  /** Presets the demo runs, with a prompt each. */
  runs: { preset: string; prompt: string }[];
  /** Extra environment for the worker processes. */
  workerEnv: Record<string, string>;
  close(): Promise<void>;
}

const PROMPTS = [
  'Explain in three sentences why mixing answers from several LLMs can beat the best single one.',
  'Give two practical tips for keeping a Redis-backed job queue reliable.',
  'What is a good name for a cat that likes distributed systems? Offer three with reasons.',
];

/** Simulated latencies, in the range real hosted 70B-class models answer a 300-token reply. */
const SIMULATED_LATENCY_MS: Record<string, number> = {
  'Qwen/Qwen2.5-72B-Instruct-Turbo': 1400,
  'meta-llama/Llama-3.3-70B-Instruct-Turbo': 1100,
  'deepseek-ai/DeepSeek-V3': 2100,
  'Qwen/Qwen3-235B-A22B-Instruct-2507-tput': 1700,
};

async function ollamaModels(): Promise<string[]> {
  try {
    const response = await fetch('http://127.0.0.1:11434/api/tags', { signal: AbortSignal.timeout(1000) });
    if (!response.ok) return [];
    const body = (await response.json()) as { models?: { name: string }[] };
    return (body.models ?? []).map((model) => model.name);
  } catch {
    return [];
  }
}

/** Picks the mode from the environment: provider keys, then a local Ollama, else simulation. */
export async function chooseProviderMode(environment: NodeJS.ProcessEnv): Promise<ProviderMode> {
  if (environment.TOGETHER_API_KEY) {
    return {
      kind: 'real',
      description:
        'REAL providers: TOGETHER_API_KEY is set, so these calls go to Together and cost real money.',
      configFile: {},
      runs: [
        { preset: 'moa-lite', prompt: PROMPTS[0]! },
        { preset: 'moa', prompt: PROMPTS[1]! },
      ],
      workerEnv: {},
      close: async () => undefined,
    };
  }
  const local = await ollamaModels();
  if (local.length > 0) {
    const proposers = local.slice(0, 3).map((name) => ({ model: `ollama/${name}`, maxTokens: 256 }));
    const models = Object.fromEntries(
      local.map((name) => [`ollama/${name}`, { inputCostPerMTok: 0, outputCostPerMTok: 0 }]),
    );
    return {
      kind: 'ollama',
      description: `REAL local models: Ollama answers at 127.0.0.1:11434 (${local.slice(0, 3).join(', ')}); cost is 0.`,
      configFile: {
        models,
        presets: {
          'ollama-moa': { layers: [proposers], aggregator: { model: `ollama/${local[0]}`, maxTokens: 512 } },
        },
        defaultPreset: 'ollama-moa',
      },
      runs: [{ preset: 'ollama-moa', prompt: PROMPTS[0]! }],
      workerEnv: {},
      close: async () => undefined,
    };
  }
  const fake: FakeProvider = await createFakeProvider({
    latencyMs: SIMULATED_LATENCY_MS,
    defaultLatencyMs: 1200,
    outputWords: 60,
  });
  return {
    kind: 'simulated',
    description:
      'SIMULATED: no provider key (TOGETHER_API_KEY) and no local Ollama, so the built-in presets run against ' +
      `the bundled fake provider at ${fake.url} with realistic latencies. Answers are placeholder text; ` +
      'tokens and cost are computed with real list prices.',
    // The built-in presets stay as they are; only where "together" lives changes.
    configFile: { providers: { together: { baseURL: fake.url } } },
    runs: [
      { preset: 'moa', prompt: PROMPTS[0]! },
      { preset: 'moa-lite', prompt: PROMPTS[1]! },
      { preset: 'self-moa', prompt: PROMPTS[2]! },
    ],
    workerEnv: { TOGETHER_API_KEY: 'simulated-key' },
    close: () => fake.close(),
  };
}
