import { callKey } from '../call-key.js';
import type { PlannedCall } from '../moa-plan.js';
import type { AgentConfig, CallRecord, ErrorRecord, LayerRecord, PresetConfig } from '../types.js';

/** An agent with the config's defaults. */
export function testAgent(model: string, maxTokens = 512): AgentConfig {
  return { model, temperature: 0.7, maxTokens };
}

/** A preset of `layers` proposer layers of `width` agents each (`p/L<k>A<i>`) and an aggregator `p/agg`. */
export function testPreset(
  shape: { layers?: number; width?: number } & Partial<Omit<PresetConfig, 'layers'>> = {},
): PresetConfig {
  const { layers = 2, width = 2, ...rest } = shape;
  return {
    name: 'test',
    layers: Array.from({ length: layers }, (_, layer) =>
      Array.from({ length: width }, (_, index) => testAgent(`p/L${layer + 1}A${index}`)),
    ),
    aggregator: testAgent('p/agg', 2048),
    minProposers: 1,
    layerTimeoutMs: 0,
    referencePrompt: 'Synthesize these responses.',
    referenceFormat: 'tagged',
    ...rest,
  };
}

/** The record of a planned call that answered `output`, at `usage` tokens and `costUsd`. */
export function answered(
  call: PlannedCall,
  output: string,
  options: { costUsd?: number | null; promptTokens?: number; completionTokens?: number } = {},
): CallRecord {
  return {
    model: call.agent.model,
    agentIndex: call.agentIndex,
    status: 'completed',
    output,
    usage: { promptTokens: options.promptTokens ?? 10, completionTokens: options.completionTokens ?? 20 },
    costUsd: options.costUsd === undefined ? 0 : options.costUsd,
    latencyMs: 1,
    attempts: 1,
    startedAt: 0,
    finishedAt: 1,
    finishReason: 'stop',
    error: null,
  };
}

/** The record of a planned call that failed with `error`. */
export function failed(call: PlannedCall, error: Partial<ErrorRecord> = {}): CallRecord {
  return {
    model: call.agent.model,
    agentIndex: call.agentIndex,
    status: 'failed',
    output: null,
    usage: { promptTokens: 0, completionTokens: 0 },
    costUsd: 0,
    latencyMs: 1,
    attempts: 1,
    startedAt: 0,
    finishedAt: 1,
    finishReason: null,
    error: { message: 'failed', type: 'server_error', code: null, ...error },
  };
}

/** A closed layer of these call records. */
export function layerOf(
  layer: number,
  role: 'proposer' | 'aggregator',
  calls: CallRecord[],
  referenceShare?: number,
): LayerRecord {
  return {
    layer,
    role,
    startedAt: 0,
    finishedAt: 1,
    durationMs: 1,
    calls,
    ...(referenceShare === undefined ? {} : { referenceShare }),
  };
}

/** The keys of these planned calls of a layer's round. */
export function keysOf(layer: number, calls: PlannedCall[], round = 0): string[] {
  return calls.map((call) => callKey({ layer, agentIndex: call.agentIndex, round }));
}
