import { ProviderError } from './provider-error.js';

/** HTTP 5xx from the provider. */
export class ProviderServerError extends ProviderError {
  override readonly name = 'ProviderServerError';
  readonly type = 'server_error' as const;
  readonly retryable = true;
}
