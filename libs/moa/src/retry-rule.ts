import { backoffDelayMs } from './backoff.js';
import type { ProviderError } from './errors/provider-error.js';
import { ProviderRateLimitError } from './errors/rate-limit-error.js';

/** What the retry rule is told about a call's failed attempt. */
export interface RetryRuleInput {
  error: ProviderError;
  /** Attempts spent so far, the failed one included (429 waits spend none). */
  attempts: number;
  /** The provider's `maxAttempts`. */
  maxAttempts: number;
  /** 429 waits so far. @defaultValue 0 */
  rateLimitWaits?: number;
  /**
   * 429 waits allowed before a 429 fails the call like any error: the
   * in-process runner bounds them; the worker pauses the provider's queue and
   * leaves the bound to BullMQ's job lifetime. @defaultValue Infinity
   */
  maxRateLimitWaits?: number;
  /** Wait after a 429 that said no `Retry-After`. @defaultValue 1000 */
  defaultRateLimitWaitMs?: number;
  /** The call was aborted (cancel, deadline): never retried. @defaultValue false */
  aborted?: boolean;
}

/**
 * What to do after a failed attempt:
 * - `wait`: a 429; wait `delayMs` and try again without spending an attempt;
 * - `retry`: a retryable error (408, 409, 5xx, timeout, connection) with
 *   attempts left; wait `delayMs` and spend the next attempt; `reason` is
 *   what `moa_llm_retries_total` counts it as;
 * - `fail`: the call fails with this error.
 */
export type RetryDecision =
  | { action: 'wait'; delayMs: number; reason: 'rate_limit' }
  | { action: 'retry'; delayMs: number; reason: string }
  | { action: 'fail' };

/**
 * The delay before the next attempt after `attempts` failed ones: the
 * provider's `Retry-After` when it sent one, else exponential backoff.
 */
export function retryDelayMs(error: Pick<ProviderError, 'retryAfterMs'>, attempts: number): number {
  return error.retryAfterMs ?? backoffDelayMs(attempts);
}

/**
 * The retry rule of every LLM call, in process (`callWithRetries`) and in
 * the worker (the call processor, BullMQ's backoff): a 429 costs no attempt
 * and waits `Retry-After`; other retryable errors back off until
 * `maxAttempts` (so does a 429 once its waits are used up); anything
 * else, or an aborted call, fails at once.
 */
export function retryDecision(input: RetryRuleInput): RetryDecision {
  const { error } = input;
  if (input.aborted) return { action: 'fail' };
  const waitsLeft = (input.rateLimitWaits ?? 0) < (input.maxRateLimitWaits ?? Number.POSITIVE_INFINITY);
  if (error instanceof ProviderRateLimitError && waitsLeft) {
    return {
      action: 'wait',
      delayMs: error.retryAfterMs ?? input.defaultRateLimitWaitMs ?? 1000,
      reason: 'rate_limit',
    };
  }
  // Past its waits, a 429 is retried like any retryable error: by spending attempts.
  if (error.retryable && input.attempts < input.maxAttempts) {
    const reason = error instanceof ProviderRateLimitError ? 'rate_limit' : error.type;
    return { action: 'retry', delayMs: retryDelayMs(error, input.attempts), reason };
  }
  return { action: 'fail' };
}
