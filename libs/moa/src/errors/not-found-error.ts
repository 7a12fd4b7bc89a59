import { ProviderError } from './provider-error.js';

/** HTTP 404: the provider does not know the model or route. */
export class ModelNotFoundError extends ProviderError {
  override readonly name = 'ModelNotFoundError';
  readonly type = 'not_found_error' as const;
  readonly retryable = false;
}
