import { ProviderError } from './provider-error.js';

/** The provider's content filter stopped the answer. */
export class ContentFilterError extends ProviderError {
  override readonly name = 'ContentFilterError';
  readonly type = 'content_filter_error' as const;
  readonly retryable = false;
}
