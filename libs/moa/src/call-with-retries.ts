import { abortableSleep } from './abortable-sleep.js';
import type { AggregatorOptions } from './aggregator-options.js';
import { attemptCall } from './call-attempt.js';
import { completedCallRecord, failedCallRecord } from './call-records.js';
import { abortedCallError } from './cancellation.js';
import { asProviderError } from './errors/as-provider-error.js';
import type { ProviderError } from './errors/provider-error.js';
import type { ResolvedModel } from './model-registry.js';
import { retryDecision } from './retry-rule.js';
import type { AgentConfig, CallRecord, ChatMessage } from './types.js';

/** Options of {@link callWithRetries}. */
export interface CallWithRetriesOptions {
  agentIndex: number;
  signal?: AbortSignal;
  onDelta?: (text: string) => void;
  /** A request's parameters for this call (its aggregator call). */
  callOptions?: AggregatorOptions;
  /** Told about every retry and why (`rate_limit`, `server_error`, …). */
  onRetry?: (reason: string, delayMs: number) => void;
  /** Injectable for tests. @defaultValue abortableSleep */
  sleep?: (milliseconds: number, signal?: AbortSignal) => Promise<void>;
  /**
   * Waits for 429s are not attempts, but are bounded so a provider that
   * always says 429 cannot hold a call forever.
   * @defaultValue 20
   */
  maxRateLimitWaits?: number;
  /** Wait after a 429 without `Retry-After`. @defaultValue 1000 */
  defaultRateLimitWaitMs?: number;
}

/**
 * One agent call with the provider's retry policy, as the in-process runner
 * makes it: 408/409/5xx/timeouts retried up to `maxAttempts` with
 * exponential backoff, 429s wait `Retry-After` without spending an attempt,
 * other errors fail at once. Never throws: a failure is a failed record.
 */
export async function callWithRetries(
  model: ResolvedModel,
  agent: AgentConfig,
  messages: ChatMessage[],
  options: CallWithRetriesOptions,
): Promise<CallRecord> {
  const sleep = options.sleep ?? abortableSleep;
  const maxAttempts = model.providerConfig.maxAttempts;
  const startedAt = Date.now();
  let attempts = 0;
  let rateLimitWaits = 0;
  for (;;) {
    attempts += 1;
    try {
      const result = await attemptCall(model, agent, messages, {
        signal: options.signal,
        onDelta: options.onDelta,
        ...(options.callOptions ? { callOptions: options.callOptions } : {}),
      });
      return completedCallRecord(model.modelId, options.agentIndex, result, attempts);
    } catch (thrown) {
      const error = options.signal?.aborted
        ? abortedCallError(options.signal.reason)
        : asProviderError(thrown);
      const decision = retryDecision({
        error,
        attempts,
        maxAttempts,
        rateLimitWaits,
        maxRateLimitWaits: options.maxRateLimitWaits ?? 20,
        defaultRateLimitWaitMs: options.defaultRateLimitWaitMs,
        aborted: options.signal?.aborted === true,
      });
      if (decision.action === 'wait') {
        rateLimitWaits += 1;
        attempts -= 1;
      }
      if (decision.action !== 'fail') {
        options.onRetry?.(decision.reason, decision.delayMs);
        try {
          await sleep(decision.delayMs, options.signal);
          continue;
        } catch (aborted) {
          return failedRecord(model, options.agentIndex, attempts, startedAt, abortedCallError(aborted));
        }
      }
      return failedRecord(model, options.agentIndex, attempts, startedAt, error);
    }
  }
}

function failedRecord(
  model: ResolvedModel,
  agentIndex: number,
  attempts: number,
  startedAt: number,
  error: ProviderError,
): CallRecord {
  return failedCallRecord({
    model: model.modelId,
    agentIndex,
    attempts,
    startedAt,
    finishedAt: Date.now(),
    error: error.toRecord(),
    pricing: model.pricing,
  });
}
