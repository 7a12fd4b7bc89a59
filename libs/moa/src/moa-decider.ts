import { agreementOf } from './agreement.js';
import { callKey } from './call-key.js';
import { cancelledRequestError } from './cancellation.js';
import { spentUsd, worstCaseLayerCostUsd, type PriceLookup } from './cost-projection.js';
import { layerCount, planLayer, referenceLayerOf, referencesFrom, type PlannedCall } from './moa-plan.js';
import {
  HALVED_REFERENCE_SHARE,
  needsHalvedReferences,
  recordAfterHalvedReferences,
} from './halved-references.js';
import { answerOf, finishedLayer, layerShortfall } from './moa-result.js';
import type { CallRecord, ChatMessage, ErrorRecord, LayerRecord, PresetConfig, StopRecord } from './types.js';

/*
 * The decider: what a MoA request does next, as a pure function of where it
 * stands. Both runners (runMoa in process, the worker's orchestrator) only
 * carry out its decisions, so every rule about layers lives here once:
 * minProposers, the aggregator's failure, cancellation, the straggler
 * deadline, the early-stop and cost-cap policies, and the aggregator's run
 * with halved references after it exceeded its model's context.
 */

/** Where a request stands: everything the decider looks at. */
export interface MoaState {
  /** The request's preset snapshot, its policies as the request overrode them. */
  preset: PresetConfig;
  messages: ChatMessage[];
  /** Closed layers in the order they ran (an aggregator run again replaces its first run). */
  layers: readonly LayerRecord[];
  /** Keys ({@link callKey}) of every call of the request that has finished. @defaultValue none */
  finished?: ReadonlySet<string>;
  /** Layers whose straggler deadline has passed: their unfinished calls are abandoned. @defaultValue none */
  layersPastDeadline?: ReadonlySet<number>;
  /** The request has been cancelled. @defaultValue false */
  cancelled?: boolean;
  /** Model prices, for the cost cap. @defaultValue every model unpriced (projected at 0) */
  priceOf?: PriceLookup;
  /**
   * Context windows, to fit each call's prompt (see `fit-to-context.ts`).
   * @defaultValue every window unknown: prompts are sent as built
   */
  contextWindowOf?: (modelId: string) => number | undefined;
}

/** One run of a layer: which layer, which round of it, and why the layers between were skipped. */
export interface LayerStep {
  layer: number;
  role: 'proposer' | 'aggregator';
  /** 0, or 1 for an aggregator run again with halved references. */
  round: number;
  /** The share of the reference budget its references get, when not the whole. */
  referenceShare?: number;
  /** Position of its record among the closed layers (a second round replaces the first). */
  index: number;
  /** Set when a policy skipped proposer layers to reach this (aggregator) step. */
  stopped: StopRecord | null;
  /** Every call of the step, in agent order. */
  planned: PlannedCall[];
}

/** What happens next. */
export type MoaDecision =
  /** Make these calls of the step (those not finished yet) and wait for them. */
  | { type: 'run_layer'; step: LayerStep; calls: PlannedCall[] }
  /** Every call of the step has finished, or its deadline abandoned the rest: record the layer. */
  | { type: 'close_layer'; step: LayerStep; finished: PlannedCall[]; abandoned: PlannedCall[] }
  /** The aggregator answered: the request is completed. */
  | { type: 'finish'; output: string; stopped: StopRecord | null }
  /** The request fails with this error (its finished layers are kept). */
  | { type: 'fail'; error: ErrorRecord; stopped: StopRecord | null }
  /** The request was cancelled. */
  | { type: 'cancel'; error: ErrorRecord };

/** The decisions that end a request. */
export type TerminalDecision = Extract<MoaDecision, { type: 'finish' | 'fail' | 'cancel' }>;

/** Whether a decision ends the request. */
export function isTerminal(decision: MoaDecision): decision is TerminalDecision {
  return decision.type === 'finish' || decision.type === 'fail' || decision.type === 'cancel';
}

/**
 * The record of a step's layer from its calls, as both runners close it: a
 * round after the first replaces the refused round at the step's position,
 * each of its calls keeping the refused call's attempts, and says the share
 * of the reference budget it was planned with.
 */
export function closedLayerRecord(
  step: LayerStep,
  closed: readonly LayerRecord[],
  startedAt: number,
  calls: CallRecord[],
): LayerRecord {
  const refused = step.round > 0 ? closed[step.index]?.calls[0] : undefined;
  const recorded = step.round > 0 ? calls.map((call) => recordAfterHalvedReferences(refused, call)) : calls;
  return {
    ...finishedLayer(step.layer, step.role, startedAt, recorded),
    ...(step.referenceShare !== undefined ? { referenceShare: step.referenceShare } : {}),
  };
}

/** The key of a step's call. */
export function stepCallKey(step: Pick<LayerStep, 'layer' | 'round'>, call: Pick<PlannedCall, 'agentIndex'>) {
  return callKey({ layer: step.layer, agentIndex: call.agentIndex, round: step.round });
}

/**
 * What the request does next. Cancellation wins over everything but the
 * closing of a layer whose calls have all ended; then the last closed layer
 * decides: a completed aggregator finishes the request, a
 * failed one fails it (once run again with halved references when it
 * exceeded its context), a proposer layer short of `minProposers` fails it;
 * otherwise the next step is chosen (see {@link nextStep}) and its calls are
 * run, or, when all have finished or its deadline passed, its layer is closed.
 */
export function decideNext(state: MoaState): MoaDecision {
  const cancel = { type: 'cancel', error: cancelledRequestError() } as const;
  const next = nextStep(state);
  if (next.type !== 'step') return state.cancelled ? cancel : next;
  const { step } = next;
  const finished = state.finished ?? new Set<string>();
  // A call whose prompt cannot fit its model's window is never made: it is done, unsent.
  const isDone = (call: PlannedCall) => call.notSent !== undefined || finished.has(stepCallKey(step, call));
  const done = step.planned.filter(isDone);
  const pending = step.planned.filter((call) => !isDone(call));
  // A cancelled request still records a layer whose calls all ended (they were paid for), then ends.
  if (state.cancelled && (pending.length > 0 || done.length === 0)) return cancel;
  const pastDeadline = step.role === 'proposer' && (state.layersPastDeadline?.has(step.layer) ?? false);
  if (pending.length > 0 && !pastDeadline) return { type: 'run_layer', step, calls: pending };
  return { type: 'close_layer', step, finished: done, abandoned: pending };
}

type NextStep = { type: 'step'; step: LayerStep } | Extract<MoaDecision, { type: 'finish' | 'fail' }>;

/** The next step after the closed layers, or the end they make. */
function nextStep(state: MoaState): NextStep {
  const { preset, layers } = state;
  const last = layers.at(-1);
  if (last?.role === 'aggregator') {
    const proposers = layers.slice(0, -1);
    const stopped = stopBeforeAggregator(state, proposers);
    const output = answerOf(layers);
    if (output !== null) return { type: 'finish', output, stopped };
    const call = last.calls[0];
    if (
      call &&
      last.referenceShare === undefined &&
      needsHalvedReferences(call, referencesFrom(proposers.at(-1)).length)
    ) {
      return aggregatorStep(state, proposers, {
        round: 1,
        referenceShare: HALVED_REFERENCE_SHARE,
        stopped,
      });
    }
    return { type: 'fail', error: layerShortfall(preset, last) ?? aggregatorFailed(preset), stopped };
  }
  if (last) {
    const shortfall = layerShortfall(preset, last);
    if (shortfall) return { type: 'fail', error: shortfall, stopped: null };
  }
  return afterProposers(state, layers);
}

/**
 * The step after closed proposer layers: the next proposer layer, unless a
 * policy says the aggregator comes now. Early stop: the last layer's
 * successful answers agree at least `minAgreement` (see `agreement.ts`).
 * Cost cap: the next proposer layer's worst case would take the request
 * past `maxCostUsd`. The aggregator itself must fit the cap, or the request
 * fails with `cost_cap_exceeded`.
 */
function afterProposers(state: MoaState, proposers: readonly LayerRecord[]): NextStep {
  const { preset } = state;
  const last = proposers.at(-1);
  const next = (last?.layer ?? 0) + 1;
  let stopped: StopRecord | null = null;
  if (next < layerCount(preset)) {
    if (last && reachesAgreement(preset, last)) {
      stopped = { reason: 'agreement', afterLayer: last.layer };
    } else {
      const planned = planLayer(preset, next, state.messages, referenceLayerOf(proposers, next), {
        ...(state.contextWindowOf ? { contextWindowOf: state.contextWindowOf } : {}),
      });
      if (fitsCap(state, proposers, planned)) {
        return {
          type: 'step',
          step: { layer: next, role: 'proposer', round: 0, index: proposers.length, stopped: null, planned },
        };
      }
      stopped = { reason: 'cost_cap', afterLayer: last?.layer ?? 0 };
    }
  }
  return aggregatorStep(state, proposers, { round: 0, stopped });
}

/** The aggregator's step after these proposer layers, or `cost_cap_exceeded` when it cannot fit the cap. */
function aggregatorStep(
  state: MoaState,
  proposers: readonly LayerRecord[],
  options: { round: number; referenceShare?: number; stopped: StopRecord | null },
): NextStep {
  const { preset } = state;
  const layer = layerCount(preset);
  // The same reference layer as the call job finds in the stored layers (call-processor.ts).
  const planned = planLayer(preset, layer, state.messages, referenceLayerOf(proposers, layer), {
    ...(options.referenceShare !== undefined ? { referenceShare: options.referenceShare } : {}),
    ...(state.contextWindowOf ? { contextWindowOf: state.contextWindowOf } : {}),
  });
  if (!fitsCap(state, proposers, planned)) {
    const afterLayer = proposers.at(-1)?.layer ?? 0;
    return {
      type: 'fail',
      error: costCapExceeded(state, proposers, planned),
      stopped: { reason: 'cost_cap', afterLayer },
    };
  }
  return {
    type: 'step',
    step: {
      layer,
      role: 'aggregator',
      round: options.round,
      ...(options.referenceShare !== undefined ? { referenceShare: options.referenceShare } : {}),
      index: proposers.length,
      stopped: options.stopped,
      planned,
    },
  };
}

/** The stop that led from these proposer layers to the aggregator, found again as it was decided. */
function stopBeforeAggregator(state: MoaState, proposers: readonly LayerRecord[]): StopRecord | null {
  const decided = afterProposers(state, proposers);
  return decided.type === 'step' ? decided.step.stopped : decided.stopped;
}

/** Whether a proposer layer's successful answers agree enough to stop early. */
export function reachesAgreement(preset: PresetConfig, layer: LayerRecord): boolean {
  if (!preset.earlyStop) return false;
  const agreement = agreementOf(referencesFrom(layer));
  return agreement !== null && agreement >= preset.earlyStop.minAgreement;
}

/**
 * Whether the calls' worst case, added to what the proposer layers before
 * them spent, stays within the preset's cap. (A failed aggregator run spent
 * nothing: a failed call uses no tokens.)
 */
function fitsCap(state: MoaState, spentBy: readonly LayerRecord[], planned: readonly PlannedCall[]): boolean {
  const cap = state.preset.maxCostUsd;
  if (cap === undefined) return true;
  return spentUsd(spentBy) + worstCaseLayerCostUsd(planned, state.priceOf ?? (() => undefined)) <= cap;
}

function costCapExceeded(
  state: MoaState,
  spentBy: readonly LayerRecord[],
  planned: readonly PlannedCall[],
): ErrorRecord {
  const spent = spentUsd(spentBy);
  const projected = worstCaseLayerCostUsd(planned, state.priceOf ?? (() => undefined));
  return {
    message:
      `the aggregator's worst-case cost (${formatUsd(projected)}) would take the request past its cap ` +
      `of ${formatUsd(state.preset.maxCostUsd ?? 0)} (spent so far: ${formatUsd(spent)})`,
    type: 'moa_error',
    code: 'cost_cap_exceeded',
  };
}

function aggregatorFailed(preset: PresetConfig): ErrorRecord {
  return {
    message: `the aggregator call (${preset.aggregator.model}) failed: no result`,
    type: 'moa_error',
    code: 'aggregator_failed',
  };
}

function formatUsd(value: number): string {
  return `$${value.toPrecision(3)}`;
}
