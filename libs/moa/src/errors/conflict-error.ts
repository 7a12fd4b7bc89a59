import { ProviderError } from './provider-error.js';

/** HTTP 409: a transient conflict at the provider; retried like openai-node does. */
export class ProviderConflictError extends ProviderError {
  override readonly name = 'ProviderConflictError';
  readonly type = 'conflict_error' as const;
  readonly retryable = true;
}
