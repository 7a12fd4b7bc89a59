import { ProviderError } from './provider-error.js';

/** No HTTP response: DNS, TCP or TLS failure, or a dropped connection. */
export class ProviderConnectionError extends ProviderError {
  override readonly name = 'ProviderConnectionError';
  readonly type = 'connection_error' as const;
  readonly retryable = true;
}
