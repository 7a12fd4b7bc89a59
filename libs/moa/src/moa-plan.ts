import { CONTEXT_LENGTH_EXCEEDED } from './errors/context-length-exceeded.js';
import { fitToContext } from './fit-to-context.js';
import type {
  AgentConfig,
  CallRecord,
  ChatMessage,
  ContextFitRecord,
  ErrorRecord,
  LayerRecord,
  PresetConfig,
} from './types.js';

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

/**
 * What a layer's prompt is built from in the layer before it: each call's
 * agent, outcome, answer and finish reason. A {@link LayerRecord} is one; a
 * call job reads no more than this of its request's stored layers.
 */
export interface ReferenceLayer {
  calls: Pick<CallRecord, 'agentIndex' | 'status' | 'output' | 'finishReason'>[];
}

/**
 * The layer whose answers are the references of a 1-based layer: the last
 * proposer layer before it among the request's recorded layers (a proposer
 * layer's is the one right before it; the aggregator's the last proposer
 * layer run, which a policy may have made an early one). Undefined for the
 * first layer.
 */
export function referenceLayerOf<T extends Pick<LayerRecord, 'layer' | 'role'>>(
  layers: readonly T[],
  layer: number,
): T | undefined {
  return layers.filter((recorded) => recorded.role === 'proposer' && recorded.layer < layer).at(-1);
}

/** A finished layer's successful calls, in the preset's agent order: the ones whose answers are references. */
function answeredCalls(layer: ReferenceLayer | undefined) {
  if (!layer) return [];
  return [...layer.calls]
    .sort((left, right) => left.agentIndex - right.agentIndex)
    .filter((call) => call.status === 'completed' && call.output !== null);
}

/** Outputs of a finished layer's successful calls, in the preset's agent order. */
export function referencesFrom(layer: ReferenceLayer | undefined): string[] {
  return answeredCalls(layer).map((call) => call.output as string);
}

/**
 * Parallel to {@link referencesFrom}: whether each of those answers was cut
 * off at its model's token limit (`finish_reason: length`).
 */
export function truncatedReferencesFrom(layer: ReferenceLayer | undefined): boolean[] {
  return answeredCalls(layer).map((call) => call.finishReason === 'length');
}

/** One planned LLM call: which agent, and exactly what it is sent. */
export interface PlannedCall {
  agentIndex: number;
  /** The agent as the call is sent: its `maxTokens` lowered when the prompt needed the room. */
  agent: AgentConfig;
  /** The messages to send; empty when the call is {@link PlannedCall.notSent}. */
  messages: ChatMessage[];
  /** What fitting the prompt into the model's context window changed (empty when nothing). */
  contextFit: ContextFitRecord;
  /**
   * Set when the prompt cannot fit the model's context window even with
   * every reference cut and `max_tokens` at its floor: the call is not sent
   * and fails with this error (`context_length_exceeded`).
   */
  notSent?: ErrorRecord;
}

/** Options of {@link planLayer}. */
export interface PlanLayerOptions {
  /**
   * The share (0..1] of each call's budget for references: 0.5 halves them,
   * for a call planned again after the provider refused its prompt for
   * context length.
   * @defaultValue 1
   */
  referenceShare?: number;
  /**
   * A model's context window in tokens (`contextWindowOf` of the config);
   * undefined for a model whose window is unknown, whose prompt is sent as
   * built. Without it no prompt is measured.
   */
  contextWindowOf?: (modelId: string) => number | undefined;
}

/**
 * The calls of a 1-based layer given the previous layer's record. A pure
 * function of the request and the previous outputs, so identical requests
 * send identical messages (reproducible and cacheable), and a call job can
 * build its own prompt again from the same inputs ({@link planCall}) instead
 * of carrying a copy of the references. Each call's prompt is fitted into
 * its model's context window (`fit-to-context.ts`): references shortened,
 * then `max_tokens` lowered, or the call marked not to be sent.
 */
export function planLayer(
  preset: PresetConfig,
  layer: number,
  messages: ChatMessage[],
  previous: ReferenceLayer | undefined,
  options: PlanLayerOptions = {},
): PlannedCall[] {
  const inputs = planInputs(previous, options);
  return agentsOfLayer(preset, layer).map((agent, agentIndex) =>
    plannedCall(preset, messages, agent, agentIndex, inputs, options),
  );
}

/**
 * One call of {@link planLayer}, exactly as the whole layer's plan has it:
 * what a call job sends, built where it runs from the request's messages and
 * the previous layer's answers. Undefined for an agent the layer lacks.
 */
export function planCall(
  preset: PresetConfig,
  layer: number,
  agentIndex: number,
  messages: ChatMessage[],
  previous: ReferenceLayer | undefined,
  options: PlanLayerOptions = {},
): PlannedCall | undefined {
  const agent = agentsOfLayer(preset, layer)[agentIndex];
  return agent && plannedCall(preset, messages, agent, agentIndex, planInputs(previous, options), options);
}

/** What every call of a layer's plan shares: the references, and one memo of token counts. */
interface PlanInputs {
  answered: ReturnType<typeof answeredCalls>;
  references: string[];
  truncated: boolean[];
  referenceShare: number;
  memo: Map<string, number>;
}

/**
 * The references of a layer record, by the record: the same arrays each time
 * it is planned from, so that its reference block is built once
 * (`sharedReferenceBlock` in references.ts) however many calls are planned
 * from one record, as when a worker caches the stored layers it read.
 */
const referencesOfLayer = new WeakMap<
  ReferenceLayer,
  Pick<PlanInputs, 'answered' | 'references' | 'truncated'>
>();

function referencesOf(
  previous: ReferenceLayer | undefined,
): Pick<PlanInputs, 'answered' | 'references' | 'truncated'> {
  const known = previous && referencesOfLayer.get(previous);
  if (known) return known;
  const answered = answeredCalls(previous);
  const inputs = {
    answered,
    references: answered.map((call) => call.output as string),
    truncated: answered.map((call) => call.finishReason === 'length'),
  };
  if (previous) referencesOfLayer.set(previous, inputs);
  return inputs;
}

function planInputs(previous: ReferenceLayer | undefined, options: PlanLayerOptions): PlanInputs {
  return {
    ...referencesOf(previous),
    referenceShare: options.referenceShare ?? 1,
    // One memo for the plan: every agent's prompt repeats the request's messages.
    memo: new Map<string, number>(),
  };
}

function plannedCall(
  preset: PresetConfig,
  messages: ChatMessage[],
  agent: AgentConfig,
  agentIndex: number,
  inputs: PlanInputs,
  options: PlanLayerOptions,
): PlannedCall {
  const { answered, references, truncated, referenceShare, memo } = inputs;
  const fitted = fitToContext({
    messages,
    references,
    agent,
    referencePrompt: preset.referencePrompt,
    referenceFormat: preset.referenceFormat,
    truncated,
    contextWindow: options.contextWindowOf?.(agent.model),
    referenceShare,
    memo,
  });
  const contextFit: ContextFitRecord = referenceShare < 1 ? { referenceShare } : {};
  if (fitted.outcome === 'context_length_exceeded') {
    return {
      agentIndex,
      agent,
      messages: [],
      contextFit,
      notSent: { message: fitted.message, type: 'invalid_request_error', code: CONTEXT_LENGTH_EXCEEDED },
    };
  }
  if (fitted.referencesCut.length > 0) {
    contextFit.referencesCut = fitted.referencesCut.map((cut) => ({
      agentIndex: (answered[cut.index] as (typeof answered)[number]).agentIndex,
      originalTokens: cut.originalTokens,
      keptTokens: cut.keptTokens,
    }));
  }
  if (fitted.maxTokens < agent.maxTokens) {
    contextFit.maxTokensLowered = { from: agent.maxTokens, to: fitted.maxTokens };
  }
  return {
    agentIndex,
    agent: fitted.maxTokens === agent.maxTokens ? agent : { ...agent, maxTokens: fitted.maxTokens },
    messages: fitted.messages,
    contextFit,
  };
}
