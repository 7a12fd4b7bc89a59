import { ProviderError } from './provider-error.js';

/** HTTP 403: the key may not use this model. */
export class PermissionDeniedError extends ProviderError {
  override readonly name = 'PermissionDeniedError';
  readonly type = 'permission_error' as const;
  readonly retryable = false;
}
