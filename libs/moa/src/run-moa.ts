import type { AggregatorOptions } from './aggregator-options.js';
import { unsentCallRecord, withContextFit } from './call-records.js';
import { callWithRetries } from './call-with-retries.js';
import { LayerDeadlineError } from './errors/layer-deadline-error.js';
import type { MoaEvent } from './moa-events.js';
import {
  closedLayerRecord,
  decideNext,
  stepCallKey,
  type LayerStep,
  type TerminalDecision,
} from './moa-decider.js';
import type { PlannedCall } from './moa-plan.js';
import { totalCost, totalUsage, type MoaResult } from './moa-result.js';
import type { ModelRegistry, ResolvedModel } from './model-registry.js';
import type { CallRecord, ChatMessage, LayerRecord, PresetConfig } from './types.js';

/** Options of {@link runMoa}. */
export interface RunMoaOptions {
  /** The preset, its policies (`earlyStop`, `maxCostUsd`) included. */
  preset: PresetConfig;
  messages: ChatMessage[];
  models: ModelRegistry;
  /** Aborting it cancels the request: no further call is made. */
  signal?: AbortSignal;
  onEvent?: (event: MoaEvent) => void;
  /** Streams the aggregator's answer. */
  onAggregatorDelta?: (text: string) => void;
  /** The request's sampling parameters and `response_format`: for the aggregator call only. */
  aggregatorOptions?: AggregatorOptions;
  onRetry?: (model: string, reason: string) => void;
  /** Injectable for tests. */
  sleep?: (milliseconds: number, signal?: AbortSignal) => Promise<void>;
}

/**
 * Runs a MoA request in this process by carrying out the decider's
 * decisions (moa-decider.ts): each layer's calls in parallel, then the
 * aggregator, with the same rules as the distributed path (minProposers,
 * layer deadline, retries, policies, cost), and the baseline that
 * benchmarks compare it against.
 */
export async function runMoa(options: RunMoaOptions): Promise<MoaResult> {
  const { preset } = options;
  const layers: LayerRecord[] = [];
  const records = new Map<string, CallRecord>();
  let layerStartedAt = Date.now();
  // The step whose calls were last made (see stepName).
  let startedStep: string | undefined;
  const stepName = (step: LayerStep) => `L${step.layer}-R${step.round}`;
  const startStep = (step: LayerStep) => {
    options.onEvent?.({
      type: 'layer_started',
      layer: step.layer,
      role: step.role,
      calls: step.planned.length,
    });
    layerStartedAt = Date.now();
    startedStep = stepName(step);
  };
  // An unknown provider fails its call; neither the cap nor the context budget can measure it.
  const priceOf = (model: string) => resolvedOrUndefined(options.models, model)?.pricing;
  const contextWindowOf = (model: string) => resolvedOrUndefined(options.models, model)?.contextWindow;
  for (;;) {
    const decision = decideNext({
      preset,
      messages: options.messages,
      layers,
      finished: new Set(records.keys()),
      cancelled: options.signal?.aborted === true,
      priceOf,
      contextWindowOf,
    });
    switch (decision.type) {
      case 'run_layer': {
        const { step } = decision;
        startStep(step);
        const calls = await runCalls(options, step, decision.calls);
        decision.calls.forEach((call, index) => records.set(stepCallKey(step, call), calls[index]!));
        break;
      }
      case 'close_layer': {
        const { step } = decision;
        // In process every call ends (a deadline aborts the stragglers): nothing is abandoned.
        // No call of the step fits its model's window, so none was made: it starts and ends at once.
        if (startedStep !== stepName(step)) startStep(step);
        const calls = decision.finished.map(
          (call) =>
            records.get(stepCallKey(step, call)) ??
            unsentCallRecord(
              { ...call, notSent: call.notSent! },
              resolvedOrUndefined(options.models, call.agent.model)?.pricing,
              layerStartedAt,
            ),
        );
        const record = closedLayerRecord(step, layers, layerStartedAt, calls);
        layers.splice(step.index, layers.length, record);
        options.onEvent?.({
          type: 'layer_finished',
          layer: step.layer,
          role: step.role,
          durationMs: record.durationMs,
          succeeded: calls.filter((call) => call.status === 'completed').length,
          failed: calls.filter((call) => call.status === 'failed').length,
        });
        break;
      }
      default:
        return resultOf(decision, layers, options);
    }
  }
}

/** The request's result for a terminal decision. */
function resultOf(decision: TerminalDecision, layers: LayerRecord[], options: RunMoaOptions): MoaResult {
  const status = decision.type === 'finish' ? 'completed' : decision.type === 'fail' ? 'failed' : 'cancelled';
  options.onEvent?.({ type: 'done', status });
  return {
    status,
    output: decision.type === 'finish' ? decision.output : null,
    layers,
    usage: totalUsage(layers),
    costUsd: totalCost(layers),
    error: decision.type === 'finish' ? null : decision.error,
    stopped: decision.type === 'cancel' ? null : decision.stopped,
  };
}

/** Makes a step's calls in parallel, under the request's cancel and the layer's straggler deadline. */
async function runCalls(
  options: RunMoaOptions,
  step: LayerStep,
  planned: PlannedCall[],
): Promise<CallRecord[]> {
  const { preset } = options;
  const { role } = step;
  // One controller per layer: the request's cancel and the straggler deadline both abort it.
  const controller = new AbortController();
  const onRequestAbort = () => controller.abort(options.signal?.reason);
  options.signal?.addEventListener('abort', onRequestAbort, { once: true });
  const deadline =
    role === 'proposer' && preset.layerTimeoutMs > 0
      ? setTimeout(
          () => controller.abort(new LayerDeadlineError(preset.layerTimeoutMs)),
          preset.layerTimeoutMs,
        )
      : undefined;
  try {
    return await Promise.all(
      planned.map(async (call) => {
        const record = await callWithRetries(
          options.models.resolve(call.agent.model),
          call.agent,
          call.messages,
          {
            agentIndex: call.agentIndex,
            signal: controller.signal,
            onDelta: role === 'aggregator' ? options.onAggregatorDelta : undefined,
            ...(role === 'aggregator' && options.aggregatorOptions
              ? { callOptions: options.aggregatorOptions }
              : {}),
            onRetry: (reason) => options.onRetry?.(call.agent.model, reason),
            sleep: options.sleep,
          },
        );
        return withContextFit(record, call);
      }),
    );
  } finally {
    if (deadline) clearTimeout(deadline);
    options.signal?.removeEventListener('abort', onRequestAbort);
  }
}

/** A model as the registry resolves it, or undefined for an unknown provider (its call then fails as before). */
function resolvedOrUndefined(models: ModelRegistry, modelId: string): ResolvedModel | undefined {
  try {
    return models.resolve(modelId);
  } catch {
    return undefined;
  }
}
