import type { AggregatorOptions } from './aggregator-options.js';
import { computeCostUsd } from './cost.js';
import type { ResolvedModel } from './model-registry.js';
import type { AgentConfig, ChatMessage, Usage } from './types.js';

/** A successful single attempt of one agent call. */
export interface AttemptResult {
  output: string;
  usage: Usage;
  costUsd: number | null;
  latencyMs: number;
  startedAt: number;
  finishedAt: number;
  /** The provider's `finish_reason`; null when it gave none. */
  finishReason: string | null;
}

/** Options of {@link attemptCall}. */
export interface AttemptOptions {
  signal?: AbortSignal;
  /** Streams the answer and receives each delta. */
  onDelta?: (text: string) => void;
  /** A request's parameters for this call (its aggregator call): they override the agent's. */
  callOptions?: AggregatorOptions;
}

/**
 * Makes exactly one provider call for an agent and prices it. Throws the
 * adapter's `ProviderError` on failure; retrying is the caller's decision.
 */
export async function attemptCall(
  model: ResolvedModel,
  agent: AgentConfig,
  messages: ChatMessage[],
  options: AttemptOptions = {},
): Promise<AttemptResult> {
  const startedAt = Date.now();
  const started = performance.now();
  const overrides = options.callOptions ?? {};
  const result = await model.chatModel.complete({
    model: model.providerModel,
    messages,
    temperature: overrides.temperature ?? agent.temperature,
    maxTokens: agent.maxTokens,
    ...(overrides.topP !== undefined ? { topP: overrides.topP } : {}),
    ...(overrides.seed !== undefined ? { seed: overrides.seed } : {}),
    ...(overrides.stop !== undefined ? { stop: overrides.stop } : {}),
    ...(overrides.presencePenalty !== undefined ? { presencePenalty: overrides.presencePenalty } : {}),
    ...(overrides.frequencyPenalty !== undefined ? { frequencyPenalty: overrides.frequencyPenalty } : {}),
    ...(overrides.responseFormat !== undefined ? { responseFormat: overrides.responseFormat } : {}),
    signal: options.signal,
    onDelta: options.onDelta,
  });
  const latencyMs = Math.round(performance.now() - started);
  return {
    output: result.output,
    usage: result.usage,
    costUsd: computeCostUsd(model.pricing, result.usage),
    latencyMs,
    startedAt,
    finishedAt: startedAt + latencyMs,
    finishReason: result.finishReason ?? null,
  };
}
