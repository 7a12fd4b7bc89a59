import { abortableSleep } from './abortable-sleep.js';
import type { AggregatorOptions } from './aggregator-options.js';
import { backoffDelayMs } from './backoff.js';
import { attemptCall } from './call-attempt.js';
import { completedCallRecord, failedCallRecord } from './call-records.js';
import { asProviderError } from './errors/as-provider-error.js';
import { CallCancelledError } from './errors/call-cancelled-error.js';
import { ProviderError } from './errors/provider-error.js';
import { ProviderRateLimitError } from './errors/rate-limit-error.js';
import type { ResolvedModel } from './model-registry.js';
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
      const error = options.signal?.aborted ? abortError(options.signal.reason) : asProviderError(thrown);
      let delayMs: number | undefined;
      if (!options.signal?.aborted) {
        if (error instanceof ProviderRateLimitError && rateLimitWaits < (options.maxRateLimitWaits ?? 20)) {
          rateLimitWaits += 1;
          attempts -= 1;
          delayMs = error.retryAfterMs ?? options.defaultRateLimitWaitMs ?? 1000;
        } else if (error.retryable && attempts < maxAttempts) {
          delayMs = error.retryAfterMs ?? backoffDelayMs(attempts);
        }
      }
      if (delayMs !== undefined) {
        options.onRetry?.(error instanceof ProviderRateLimitError ? 'rate_limit' : error.type, delayMs);
        try {
          await sleep(delayMs, options.signal);
          continue;
        } catch (aborted) {
          return failedRecord(model, options.agentIndex, attempts, startedAt, abortError(aborted));
        }
      }
      return failedRecord(model, options.agentIndex, attempts, startedAt, error);
    }
  }
}

/** Why a call was aborted: a layer deadline says so itself; anything else is a cancel. */
function abortError(reason: unknown): ProviderError {
  return reason instanceof ProviderError ? reason : new CallCancelledError('the request was cancelled');
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
