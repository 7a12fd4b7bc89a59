/** Exponential backoff settings for retryable provider errors. */
export interface BackoffOptions {
  /** @defaultValue 500 */
  initialDelayMs?: number;
  /** @defaultValue 8000 */
  maxDelayMs?: number;
  /** Source of randomness in [0, 1); injectable for tests. @defaultValue Math.random */
  random?: () => number;
}

/**
 * Delay before retry number `retry` (1 for the first retry): doubling from
 * 500 ms up to 8 s, less up to 25% jitter so that many workers retrying the
 * same provider do not arrive in lockstep (as openai-node does).
 */
export function backoffDelayMs(retry: number, options: BackoffOptions = {}): number {
  const initial = options.initialDelayMs ?? 500;
  const maximum = options.maxDelayMs ?? 8000;
  const random = options.random ?? Math.random;
  const base = Math.min(initial * 2 ** Math.max(0, retry - 1), maximum);
  return Math.round(base * (1 - random() * 0.25));
}
