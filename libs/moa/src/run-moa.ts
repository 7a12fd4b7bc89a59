import type { AggregatorOptions } from './aggregator-options.js';
import { unsentCallRecord, withContextFit } from './call-records.js';
import { callWithRetries } from './call-with-retries.js';
import { LayerDeadlineError } from './errors/layer-deadline-error.js';
import {
  HALVED_REFERENCE_SHARE,
  needsHalvedReferences,
  recordAfterHalvedReferences,
} from './halved-references.js';
import type { MoaEvent } from './moa-events.js';
import { layerCount, planLayer, referencesFrom, roleOfLayer, type PlannedCall } from './moa-plan.js';
import { finishedLayer, layerShortfall, totalCost, totalUsage, type MoaResult } from './moa-result.js';
import type { ModelRegistry, ResolvedModel } from './model-registry.js';
import type { CallRecord, ChatMessage, LayerRecord, PresetConfig } from './types.js';

/** Options of {@link runMoa}. */
export interface RunMoaOptions {
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
 * Runs a MoA request in this process: each proposer layer's calls in
 * parallel (the first without references, the next with the previous
 * layer's outputs), then the aggregator. The same semantics as the
 * distributed path (minProposers, layer deadline, retries, cost), and the
 * baseline that benchmarks compare it against.
 */
export async function runMoa(options: RunMoaOptions): Promise<MoaResult> {
  const { preset } = options;
  const layers: LayerRecord[] = [];
  const finish = (result: Omit<MoaResult, 'usage' | 'costUsd' | 'layers'>): MoaResult => {
    options.onEvent?.({ type: 'done', status: result.status });
    return { ...result, layers, usage: totalUsage(layers), costUsd: totalCost(layers) };
  };

  for (let layer = 1; layer <= layerCount(preset); layer += 1) {
    if (options.signal?.aborted) {
      return finish({
        status: 'cancelled',
        output: null,
        error: { message: 'the request was cancelled', type: 'cancelled', code: 'cancelled' },
      });
    }
    const record = await runLayer(options, layer, layers.at(-1));
    layers.push(record);
    const shortfall = layerShortfall(preset, record);
    if (shortfall) {
      if (options.signal?.aborted) {
        return finish({
          status: 'cancelled',
          output: null,
          error: { message: 'the request was cancelled', type: 'cancelled', code: 'cancelled' },
        });
      }
      return finish({ status: 'failed', output: null, error: shortfall });
    }
  }
  const aggregator = layers.at(-1)?.calls[0];
  return finish({ status: 'completed', output: aggregator?.output ?? '', error: null });
}

async function runLayer(
  options: RunMoaOptions,
  layer: number,
  previous: LayerRecord | undefined,
): Promise<LayerRecord> {
  const { preset } = options;
  const role = roleOfLayer(preset, layer);
  const contextWindowOf = (modelId: string) => resolvedOrUndefined(options.models, modelId)?.contextWindow;
  const planned = planLayer(preset, layer, options.messages, previous, { contextWindowOf });
  options.onEvent?.({ type: 'layer_started', layer, role, calls: planned.length });

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

  const startedAt = Date.now();
  const makeCall = async (call: PlannedCall): Promise<CallRecord> => {
    if (call.notSent) {
      return unsentCallRecord(
        { ...call, notSent: call.notSent },
        resolvedOrUndefined(options.models, call.agent.model)?.pricing,
        Date.now(),
      );
    }
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
  };
  try {
    let calls = await Promise.all(planned.map(makeCall));
    if (role === 'aggregator') calls = await retriedWithHalvedReferences(calls);
    const record = finishedLayer(layer, role, startedAt, calls);
    options.onEvent?.({
      type: 'layer_finished',
      layer,
      role,
      durationMs: record.durationMs,
      succeeded: calls.filter((call) => call.status === 'completed').length,
      failed: calls.filter((call) => call.status === 'failed').length,
    });
    return record;
  } finally {
    if (deadline) clearTimeout(deadline);
    options.signal?.removeEventListener('abort', onRequestAbort);
  }

  /**
   * The aggregator's calls, each refused by its provider for context length
   * made once more with its references halved (see `needsHalvedReferences`).
   */
  async function retriedWithHalvedReferences(calls: CallRecord[]): Promise<CallRecord[]> {
    const referenceCount = referencesFrom(previous).length;
    if (!calls.some((record, index) => needsHalvedReferences(planned[index]!, record, referenceCount))) {
      return calls;
    }
    const halved = planLayer(preset, layer, options.messages, previous, {
      contextWindowOf,
      referenceShare: HALVED_REFERENCE_SHARE,
    });
    return Promise.all(
      calls.map(async (record, index) =>
        needsHalvedReferences(planned[index]!, record, referenceCount) && !controller.signal.aborted
          ? recordAfterHalvedReferences(record, await makeCall(halved[index]!))
          : record,
      ),
    );
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
