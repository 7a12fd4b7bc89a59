import { ProviderError } from './provider-error.js';

/** HTTP 429: the provider is rate limiting us; wait `retryAfterMs` and try again without spending an attempt. */
export class ProviderRateLimitError extends ProviderError {
  override readonly name = 'ProviderRateLimitError';
  readonly type = 'rate_limit_error' as const;
  readonly retryable = true;
}
