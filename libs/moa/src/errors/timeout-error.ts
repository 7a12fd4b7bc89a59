import { ProviderError } from './provider-error.js';

/** HTTP 408 or a call that exceeded its timeout. */
export class ProviderTimeoutError extends ProviderError {
  override readonly name = 'ProviderTimeoutError';
  readonly type = 'timeout_error' as const;
  readonly retryable = true;
}
