import { describe, it, expect } from 'vitest';
import { asProviderError } from './as-provider-error.js';
import { AuthenticationError } from './authentication-error.js';
import { ProviderConflictError } from './conflict-error.js';
import { ProviderConnectionError } from './connection-error.js';
import { ContentFilterError } from './content-filter-error.js';
import { errorFromStatus } from './error-from-status.js';
import { InvalidRequestError } from './invalid-request-error.js';
import { LayerDeadlineError } from './layer-deadline-error.js';
import { ModelNotFoundError } from './not-found-error.js';
import { PermissionDeniedError } from './permission-error.js';
import { ProviderError } from './provider-error.js';
import { ProviderRateLimitError } from './rate-limit-error.js';
import { ProviderServerError } from './server-error.js';
import { ProviderTimeoutError } from './timeout-error.js';

describe('errorFromStatus', () => {
  const cases = [
    { status: 400, errorClass: InvalidRequestError, type: 'invalid_request_error', retryable: false },
    { status: 401, errorClass: AuthenticationError, type: 'authentication_error', retryable: false },
    { status: 403, errorClass: PermissionDeniedError, type: 'permission_error', retryable: false },
    { status: 404, errorClass: ModelNotFoundError, type: 'not_found_error', retryable: false },
    { status: 408, errorClass: ProviderTimeoutError, type: 'timeout_error', retryable: true },
    { status: 409, errorClass: ProviderConflictError, type: 'conflict_error', retryable: true },
    { status: 422, errorClass: InvalidRequestError, type: 'invalid_request_error', retryable: false },
    { status: 429, errorClass: ProviderRateLimitError, type: 'rate_limit_error', retryable: true },
    { status: 500, errorClass: ProviderServerError, type: 'server_error', retryable: true },
    { status: 502, errorClass: ProviderServerError, type: 'server_error', retryable: true },
    { status: 503, errorClass: ProviderServerError, type: 'server_error', retryable: true },
  ] as const;

  for (const { status, errorClass, type, retryable } of cases) {
    it(`maps ${status} to ${errorClass.name} (${type}, retryable ${retryable})`, () => {
      const error = errorFromStatus(status, `provider said ${status}`);
      expect(error).toBeInstanceOf(errorClass);
      expect(error).toBeInstanceOf(ProviderError);
      expect(error).toBeInstanceOf(Error);
      expect(error.type).toBe(type);
      expect(error.retryable).toBe(retryable);
      expect(error.status).toBe(status);
      expect(error.message).toBe(`provider said ${status}`);
      expect(error.name).toBe(errorClass.name);
    });
  }

  it('keeps the code, retryAfterMs and cause it is given', () => {
    const cause = new Error('raw');
    const error = errorFromStatus(429, 'slow down', {
      code: 'rate_limit_exceeded',
      retryAfterMs: 1500,
      cause,
    });
    expect(error.code).toBe('rate_limit_exceeded');
    expect(error.retryAfterMs).toBe(1500);
    expect(error.cause).toBe(cause);
    expect(error.toRecord()).toEqual({
      message: 'slow down',
      type: 'rate_limit_error',
      code: 'rate_limit_exceeded',
    });
  });

  it('uses the status argument even when the options carry another one', () => {
    expect(errorFromStatus(503, 'x', { status: 400 }).status).toBe(503);
  });

  it('has a null code and undefined retryAfterMs by default', () => {
    const error = errorFromStatus(500, 'boom');
    expect(error.code).toBeNull();
    expect(error.retryAfterMs).toBeUndefined();
    expect(error.toRecord()).toEqual({ message: 'boom', type: 'server_error', code: null });
  });
});

describe('error classes without a status', () => {
  it('connection, content filter and layer deadline errors have their types', () => {
    expect(new ProviderConnectionError('down')).toMatchObject({ type: 'connection_error', retryable: true });
    expect(new ContentFilterError('filtered')).toMatchObject({
      type: 'content_filter_error',
      retryable: false,
    });
    const deadline = new LayerDeadlineError(250);
    expect(deadline).toBeInstanceOf(ProviderError);
    expect(deadline).toMatchObject({ type: 'timeout_error', retryable: false, code: 'layer_deadline' });
    expect(deadline.message).toContain('250');
  });
});

describe('asProviderError', () => {
  it('returns a ProviderError unchanged', () => {
    const error = new InvalidRequestError('bad');
    expect(asProviderError(error)).toBe(error);
  });

  it('wraps an unknown Error as a retryable server error keeping the cause', () => {
    const cause = new TypeError('cannot read x');
    const error = asProviderError(cause);
    expect(error).toBeInstanceOf(ProviderServerError);
    expect(error.type).toBe('server_error');
    expect(error.retryable).toBe(true);
    expect(error.code).toBe('internal_error');
    expect(error.message).toContain('cannot read x');
    expect(error.cause).toBe(cause);
  });

  it('wraps thrown non-errors', () => {
    const error = asProviderError('plain string');
    expect(error).toBeInstanceOf(ProviderServerError);
    expect(error.message).toContain('plain string');
    expect(error.cause).toBe('plain string');
    expect(asProviderError(undefined)).toBeInstanceOf(ProviderServerError);
  });
});
