import { ProviderError } from './provider-error.js';

/** HTTP 400, 422 or another 4xx: the request itself is wrong; retrying cannot help. */
export class InvalidRequestError extends ProviderError {
  override readonly name = 'InvalidRequestError';
  readonly type = 'invalid_request_error' as const;
  readonly retryable = false;
}
