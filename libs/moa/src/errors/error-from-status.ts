import { AuthenticationError } from './authentication-error.js';
import { ProviderConflictError } from './conflict-error.js';
import { CONTEXT_LENGTH_EXCEEDED, isContextLengthExceeded } from './context-length-exceeded.js';
import { InvalidRequestError } from './invalid-request-error.js';
import { ModelNotFoundError } from './not-found-error.js';
import { PermissionDeniedError } from './permission-error.js';
import type { ProviderError, ProviderErrorOptions } from './provider-error.js';
import { ProviderRateLimitError } from './rate-limit-error.js';
import { ProviderServerError } from './server-error.js';
import { ProviderTimeoutError } from './timeout-error.js';

/**
 * Maps an HTTP status from a provider to its error class: the one place that
 * decides which failures are worth another attempt (408, 409, 429, 5xx).
 * A refusal for context length gets the code `context_length_exceeded`
 * whatever the provider's own code or wording (see
 * {@link isContextLengthExceeded}).
 */
export function errorFromStatus(
  status: number,
  message: string,
  options: ProviderErrorOptions = {},
): ProviderError {
  const withStatus = { ...options, status };
  if (status === 401) return new AuthenticationError(message, withStatus);
  if (status === 403) return new PermissionDeniedError(message, withStatus);
  if (status === 404) return new ModelNotFoundError(message, withStatus);
  if (status === 408) return new ProviderTimeoutError(message, withStatus);
  if (status === 409) return new ProviderConflictError(message, withStatus);
  if (status === 429) return new ProviderRateLimitError(message, withStatus);
  if (status >= 500) return new ProviderServerError(message, withStatus);
  if (isContextLengthExceeded(status, message, options.code)) {
    return new InvalidRequestError(message, { ...withStatus, code: CONTEXT_LENGTH_EXCEEDED });
  }
  return new InvalidRequestError(message, withStatus);
}
