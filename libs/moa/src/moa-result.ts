import { sumCosts } from './cost.js';
import type { CallRecord, ErrorRecord, LayerRecord, PresetConfig, StopRecord, Usage } from './types.js';

/** The outcome of a whole MoA request, in process or distributed. */
export interface MoaResult {
  status: 'completed' | 'failed' | 'cancelled';
  /** The aggregator's answer; null unless completed. */
  output: string | null;
  layers: LayerRecord[];
  usage: Usage;
  /** USD over every call; null when a call that used tokens has no price. */
  costUsd: number | null;
  error: ErrorRecord | null;
  /** Which policy skipped layers, after which layer; null or absent when none did. */
  stopped?: StopRecord | null;
}

/** A finished layer's record, its duration from `startedAt` to now. */
export function finishedLayer(
  layer: number,
  role: 'proposer' | 'aggregator',
  startedAt: number,
  calls: CallRecord[],
): LayerRecord {
  const finishedAt = Date.now();
  return { layer, role, startedAt, finishedAt, durationMs: finishedAt - startedAt, calls };
}

/**
 * A request's answer: its aggregator's, once that call completed (the last
 * layer recorded is the aggregator's); null before, or when it failed. The
 * answer is stored once, in that layer; a stored result need not repeat it.
 */
export function answerOf(layers: readonly LayerRecord[]): string | null {
  const last = layers.at(-1);
  const call = last?.role === 'aggregator' ? last.calls[0] : undefined;
  return call?.status === 'completed' ? (call.output ?? '') : null;
}

/** Token usage summed over every call of every layer. */
export function totalUsage(layers: LayerRecord[]): Usage {
  let promptTokens = 0;
  let completionTokens = 0;
  for (const layer of layers) {
    for (const call of layer.calls) {
      promptTokens += call.usage.promptTokens;
      completionTokens += call.usage.completionTokens;
    }
  }
  return { promptTokens, completionTokens };
}

/** Cost of calls that used tokens; a call that used none (it failed) cannot make the total unknown. */
export function callsCost(calls: CallRecord[]): number | null {
  return sumCosts(
    calls
      .filter((call) => call.usage.promptTokens + call.usage.completionTokens > 0)
      .map((call) => call.costUsd),
  );
}

/** Cost in USD of every call of every layer; null when any priced-unknown call used tokens. */
export function totalCost(layers: LayerRecord[]): number | null {
  return callsCost(layers.flatMap((layer) => layer.calls));
}

/**
 * Why a finished layer stops the request, or null when it may go on: a
 * proposer layer needs `minProposers` successes, the aggregator must succeed.
 */
export function layerShortfall(preset: PresetConfig, layer: LayerRecord): ErrorRecord | null {
  const succeeded = layer.calls.filter((call) => call.status === 'completed').length;
  if (layer.role === 'aggregator') {
    const call = layer.calls[0];
    if (call && call.status === 'completed') return null;
    const reason = call?.error ? `${call.error.type}: ${call.error.message}` : 'no result';
    return {
      message: `the aggregator call (${call?.model ?? preset.aggregator.model}) failed: ${reason}`,
      type: 'moa_error',
      code: 'aggregator_failed',
    };
  }
  if (succeeded >= preset.minProposers) return null;
  const failures = layer.calls
    .filter((call) => call.status === 'failed')
    .map((call) => `${call.model}: ${call.error?.type ?? 'error'}`)
    .join('; ');
  return {
    message:
      `layer ${layer.layer}: ${succeeded} of ${layer.calls.length} proposer calls succeeded; ` +
      `preset "${preset.name}" needs at least ${preset.minProposers} (minProposers). Failed: ${failures}`,
    type: 'moa_error',
    code: 'too_few_proposers',
  };
}
