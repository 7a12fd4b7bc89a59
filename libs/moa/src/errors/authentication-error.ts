import { ProviderError } from './provider-error.js';

/** HTTP 401, or the provider key is not configured. */
export class AuthenticationError extends ProviderError {
  override readonly name = 'AuthenticationError';
  readonly type = 'authentication_error' as const;
  readonly retryable = false;
}
