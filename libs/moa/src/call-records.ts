import type { AttemptResult } from './call-attempt.js';
import { computeCostUsd } from './cost.js';
import type { PlannedCall } from './moa-plan.js';
import type { CallRecord, ErrorRecord, ModelPricing } from './types.js';

/** The record of a call whose attempt number `attempts` answered. */
export function completedCallRecord(
  model: string,
  agentIndex: number,
  result: AttemptResult,
  attempts: number,
): CallRecord {
  return {
    model,
    agentIndex,
    status: 'completed',
    output: result.output,
    usage: result.usage,
    costUsd: result.costUsd,
    latencyMs: result.latencyMs,
    attempts,
    startedAt: result.startedAt,
    finishedAt: result.finishedAt,
    finishReason: result.finishReason,
    error: null,
  };
}

/** What is known about a call that produced no answer. */
export interface FailedCall {
  model: string;
  agentIndex: number;
  attempts: number;
  startedAt: number;
  finishedAt: number;
  error: ErrorRecord;
  /** Its price: a failed call used no tokens, so it costs 0, or null when unpriced. */
  pricing: ModelPricing | undefined;
  /** What the provider said, when it answered and the answer was refused (`content_filter`). */
  finishReason?: string | null;
}

/** The record of a call that failed: no output, no tokens. */
export function failedCallRecord(call: FailedCall): CallRecord {
  const usage = { promptTokens: 0, completionTokens: 0 };
  return {
    model: call.model,
    agentIndex: call.agentIndex,
    status: 'failed',
    output: null,
    usage,
    costUsd: computeCostUsd(call.pricing, usage),
    latencyMs: Math.max(0, call.finishedAt - call.startedAt),
    attempts: Math.max(1, call.attempts),
    startedAt: call.startedAt,
    finishedAt: call.finishedAt,
    // A content filter's stop fails the call (it is no answer), yet it is what the provider said.
    finishReason: call.finishReason ?? (call.error.type === 'content_filter_error' ? 'content_filter' : null),
    error: call.error,
  };
}

/**
 * A call's record with what fitting its prompt changed (references cut,
 * `max_tokens` lowered, references halved), so that the job object says so.
 */
export function withContextFit(record: CallRecord, call: Pick<PlannedCall, 'contextFit'>): CallRecord {
  return Object.keys(call.contextFit).length === 0 ? record : { ...record, ...call.contextFit };
}

/**
 * The record of a call that was never sent because its prompt cannot fit its
 * model's context window ({@link PlannedCall.notSent}): no attempt, no tokens.
 */
export function unsentCallRecord(
  call: PlannedCall & { notSent: ErrorRecord },
  pricing: ModelPricing | undefined,
  at: number,
): CallRecord {
  return withContextFit(
    {
      ...failedCallRecord({
        model: call.agent.model,
        agentIndex: call.agentIndex,
        attempts: 0,
        startedAt: at,
        finishedAt: at,
        error: call.notSent,
        pricing,
      }),
      attempts: 0,
    },
    call,
  );
}
