import type { ErrorRecord } from '../types.js';

/** The kinds of provider failure, as they appear in `error.type` on a call. */
export type ProviderErrorType =
  | 'rate_limit_error'
  | 'timeout_error'
  | 'server_error'
  | 'conflict_error'
  | 'invalid_request_error'
  | 'authentication_error'
  | 'permission_error'
  | 'not_found_error'
  | 'content_filter_error'
  | 'connection_error'
  | 'cancelled';

/** Options shared by every provider error. */
export interface ProviderErrorOptions {
  /** HTTP status from the provider, when there was a response. */
  status?: number;
  /** The provider's error code, e.g. `rate_limit_exceeded`. */
  code?: string | null;
  /** How long the provider asked us to wait before the next request. */
  retryAfterMs?: number;
  cause?: unknown;
}

/**
 * A failed call to an LLM provider. Subclasses say whether another attempt
 * can succeed (`retryable`), mirroring openai-node: 408, 409, 429, 5xx,
 * timeouts and connection failures are retried; other 4xx are permanent.
 */
export abstract class ProviderError extends Error {
  abstract readonly type: ProviderErrorType;
  abstract readonly retryable: boolean;
  readonly status: number | undefined;
  readonly code: string | null;
  readonly retryAfterMs: number | undefined;

  constructor(message: string, options: ProviderErrorOptions = {}) {
    super(message, { cause: options.cause });
    this.status = options.status;
    this.code = options.code ?? null;
    this.retryAfterMs = options.retryAfterMs;
  }

  /** The error as it is recorded on a call. */
  toRecord(): ErrorRecord {
    return { message: this.message, type: this.type, code: this.code };
  }
}
