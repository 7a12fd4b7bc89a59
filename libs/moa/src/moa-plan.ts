import { buildAgentMessages } from './references.js';
import type { AgentConfig, ChatMessage, LayerRecord, PresetConfig } from './types.js';

/** Number of layers of a preset, the aggregator's included (the paper's L). */
export function layerCount(preset: PresetConfig): number {
  return preset.layers.length + 1;
}

/** `aggregator` for the last layer, `proposer` for the others (1-based). */
export function roleOfLayer(preset: PresetConfig, layer: number): 'proposer' | 'aggregator' {
  return layer === layerCount(preset) ? 'aggregator' : 'proposer';
}

/** The agents of a 1-based layer: the proposers of that layer, or the aggregator alone. */
export function agentsOfLayer(preset: PresetConfig, layer: number): AgentConfig[] {
  if (layer === layerCount(preset)) return [preset.aggregator];
  const agents = preset.layers[layer - 1];
  if (!agents) throw new RangeError(`preset ${preset.name} has no layer ${layer}`);
  return agents;
}

/** Outputs of a finished layer's successful calls, in the preset's agent order. */
export function referencesFrom(layer: LayerRecord | undefined): string[] {
  if (!layer) return [];
  return [...layer.calls]
    .sort((left, right) => left.agentIndex - right.agentIndex)
    .filter((call) => call.status === 'completed' && call.output !== null)
    .map((call) => call.output as string);
}

/**
 * Parallel to {@link referencesFrom}: whether each of those answers was cut
 * off at its model's token limit (`finish_reason: length`).
 */
export function truncatedReferencesFrom(layer: LayerRecord | undefined): boolean[] {
  if (!layer) return [];
  return [...layer.calls]
    .sort((left, right) => left.agentIndex - right.agentIndex)
    .filter((call) => call.status === 'completed' && call.output !== null)
    .map((call) => call.finishReason === 'length');
}

/** One planned LLM call: which agent, and exactly what it is sent. */
export interface PlannedCall {
  agentIndex: number;
  agent: AgentConfig;
  messages: ChatMessage[];
  /** The share of the reference budget this call's references were planned with, when not the whole. */
  referenceShare?: number;
}

/** Options of {@link planLayer}. */
export interface PlanLayerOptions {
  /**
   * The share (0..1] of the reference budget the layer's references get: 0.5
   * when an aggregator is run again after exceeding its model's context.
   * Carried on each planned call as a value. @defaultValue 1 (the whole budget)
   */
  referenceShare?: number;
}

/**
 * The calls of a 1-based layer given the previous layer's record. A pure
 * function of the request and the previous outputs, so identical requests
 * send identical messages (reproducible and cacheable).
 */
export function planLayer(
  preset: PresetConfig,
  layer: number,
  messages: ChatMessage[],
  previous: LayerRecord | undefined,
  options: PlanLayerOptions = {},
): PlannedCall[] {
  const references = referencesFrom(previous);
  const truncated = truncatedReferencesFrom(previous);
  return agentsOfLayer(preset, layer).map((agent, agentIndex) => ({
    agentIndex,
    agent,
    messages: buildAgentMessages({
      messages,
      references,
      agent,
      referencePrompt: preset.referencePrompt,
      referenceFormat: preset.referenceFormat,
      truncated,
    }),
    ...(options.referenceShare !== undefined ? { referenceShare: options.referenceShare } : {}),
  }));
}
