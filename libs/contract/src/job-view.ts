import type { RequestJobData, RequestProgress, RequestResult, RequestStatus } from './payloads.js';
import {
  answerOf,
  cancelledRequestError,
  totalCost,
  totalUsage,
  type CallRecord,
  type ErrorRecord,
  type LayerRecord,
  type StopRecord,
} from '@moa-queue/moa';

/** A call as the API shows it (DESIGN §4). */
export interface CallView {
  model: string;
  status: 'completed' | 'failed';
  output: string | null;
  usage: { prompt_tokens: number; completion_tokens: number };
  cost_usd: number | null;
  latency_ms: number;
  attempts: number;
  /** The provider's `finish_reason` (`stop`, `length`, …); null when unknown or the call failed. */
  finish_reason: string | null;
  /**
   * The references shortened to fit the model's context window, in
   * reference order; empty when none was (see docs/architecture.md,
   * "Context budgets").
   */
  references_cut: ReferenceCutView[];
  /** The agent's `max_tokens` and the lower one the call was sent with; null when not lowered. */
  max_tokens_lowered: { from: number; to: number } | null;
  /**
   * True on an aggregator call made again with its references halved after
   * the provider refused the prompt for context length.
   */
  references_halved: boolean;
  error: ErrorRecord | null;
}

/** A reference shortened to fit a call's context window. */
export interface ReferenceCutView {
  /** The previous layer's call whose answer it is (its index in that layer's `calls`). */
  agent_index: number;
  /** Tokens of the answer (o200k_base). */
  original_tokens: number;
  /** Tokens of it that were sent, before the note saying it was cut. */
  kept_tokens: number;
}

/** A layer as the API shows it. */
export interface LayerView {
  layer: number;
  role: 'proposer' | 'aggregator';
  duration_ms: number;
  calls: CallView[];
  /**
   * Present on an aggregator layer run again with halved references after
   * its first run exceeded the model's context: the share it was given (0.5).
   */
  reference_share?: number;
}

/** Which policy cut a request's layers short, and after which layer (0: before any). */
export interface StoppedView {
  reason: 'agreement' | 'cost_cap';
  after_layer: number;
}

/** The job object of DESIGN §4. */
export interface JobView {
  id: string;
  object: 'moa.job';
  status: RequestStatus;
  preset: string;
  created_at: number;
  completed_at: number | null;
  output: string | null;
  layers: LayerView[];
  usage: { prompt_tokens: number; completion_tokens: number; total_tokens: number };
  cost_usd: number | null;
  metadata: Record<string, string>;
  error: ErrorRecord | null;
  /** Present only when a policy (early stop, cost cap) skipped layers or ended the request. */
  stopped?: StoppedView;
  webhook: { url: string; deliveries: WebhookDeliveryView[] } | null;
}

/** One webhook delivery attempt as the job object shows it. */
export interface WebhookDeliveryView {
  attempt: number;
  at: number;
  status_code: number | null;
  /**
   * Why the attempt failed: null on a 2xx, otherwise a short reason such as
   * `HTTP 500`, `timeout after 10000 ms`, `connection refused` or
   * `blocked: 10.0.0.5 is a private address (10.0.0.0/8)`. Never holds the
   * payload or a secret. Null on entries recorded before the field existed.
   */
  error: string | null;
}

/** What is known about a request, read from its orchestrator job. */
export interface RequestSnapshot {
  data: RequestJobData;
  status: RequestStatus;
  finishedOn: number | undefined;
  progress: RequestProgress | undefined;
  result: RequestResult | undefined;
  failedReason: string | undefined;
  /** Webhook delivery attempts so far, oldest first. */
  deliveries?: WebhookDeliveryView[];
}

function callView(call: CallRecord): CallView {
  return {
    model: call.model,
    status: call.status,
    output: call.output,
    usage: { prompt_tokens: call.usage.promptTokens, completion_tokens: call.usage.completionTokens },
    cost_usd: call.costUsd,
    latency_ms: call.latencyMs,
    attempts: call.attempts,
    // Records written before the field existed have none.
    finish_reason: call.finishReason ?? null,
    references_cut: (call.referencesCut ?? []).map((cut) => ({
      agent_index: cut.agentIndex,
      original_tokens: cut.originalTokens,
      kept_tokens: cut.keptTokens,
    })),
    max_tokens_lowered: call.maxTokensLowered ?? null,
    references_halved: call.referenceShare !== undefined && call.referenceShare < 1,
    error: call.error,
  };
}

/** A layer record in the API's snake_case, calls in agent order. */
export function layerView(layer: LayerRecord): LayerView {
  return {
    layer: layer.layer,
    role: layer.role,
    duration_ms: layer.durationMs,
    calls: [...layer.calls].sort((left, right) => left.agentIndex - right.agentIndex).map(callView),
    ...(layer.referenceShare === undefined ? {} : { reference_share: layer.referenceShare }),
  };
}

const toSeconds = (milliseconds: number) => Math.floor(milliseconds / 1000);

/** A stored delivery record with every field of the view, whenever it was written. */
function deliveryView(entry: WebhookDeliveryView): WebhookDeliveryView {
  return {
    attempt: entry.attempt,
    at: entry.at,
    status_code: entry.status_code ?? null,
    error: entry.error ?? null,
  };
}

/** The job object's `stopped` field, as a spread: absent when no policy acted (DESIGN §4's object as it is). */
function stoppedView(stopped: StopRecord | null): { stopped?: StoppedView } {
  return stopped ? { stopped: { reason: stopped.reason, after_layer: stopped.afterLayer } } : {};
}

/** Builds the job object of DESIGN §4 from a request snapshot: the API's answer and the webhook's body. */
export function jobView(snapshot: RequestSnapshot): JobView {
  const { data, result, progress } = snapshot;
  const layers = result?.layers ?? progress?.layers ?? [];
  const usage = totalUsage(layers);
  let error: ErrorRecord | null = result?.error ?? progress?.error ?? null;
  if (snapshot.status === 'failed' && !error) {
    error = { message: snapshot.failedReason ?? 'the request failed', type: 'server_error', code: null };
  }
  if (snapshot.status === 'cancelled' && !error) error = cancelledRequestError();
  const finished =
    snapshot.status === 'completed' || snapshot.status === 'failed' || snapshot.status === 'cancelled';
  return {
    id: data.requestId,
    object: 'moa.job',
    status: snapshot.status,
    preset: data.preset.name,
    created_at: toSeconds(data.createdAt),
    completed_at: finished && snapshot.finishedOn ? toSeconds(snapshot.finishedOn) : null,
    output: snapshot.status === 'completed' ? (result?.output ?? answerOf(layers)) : null,
    layers: layers.map(layerView),
    usage: {
      prompt_tokens: usage.promptTokens,
      completion_tokens: usage.completionTokens,
      total_tokens: usage.promptTokens + usage.completionTokens,
    },
    cost_usd: totalCost(layers),
    metadata: data.metadata,
    error: snapshot.status === 'completed' ? null : error,
    ...stoppedView(result?.stopped ?? progress?.stopped ?? null),
    webhook: data.webhook
      ? { url: data.webhook.url, deliveries: (snapshot.deliveries ?? []).map(deliveryView) }
      : null,
  };
}
