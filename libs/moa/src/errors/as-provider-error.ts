import { ProviderError } from './provider-error.js';
import { ProviderServerError } from './server-error.js';

/** Anything thrown during a call, as a `ProviderError` (an unexpected error counts as a server error). */
export function asProviderError(error: unknown): ProviderError {
  if (error instanceof ProviderError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new ProviderServerError(`unexpected error: ${message}`, { code: 'internal_error', cause: error });
}
