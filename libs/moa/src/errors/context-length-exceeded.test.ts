import { describe, it, expect } from 'vitest';
import {
  CONTEXT_LENGTH_EXCEEDED,
  failedForContextLength,
  isContextLengthExceeded,
} from './context-length-exceeded.js';
import { errorFromStatus } from './error-from-status.js';
import { InvalidRequestError } from './invalid-request-error.js';

/** Refusals as providers word them (status, message, code). */
const REFUSALS: [number, string, string | null][] = [
  [
    400,
    "This model's maximum context length is 32768 tokens. However, your messages resulted in 40000 tokens. Please reduce the length of the messages.",
    CONTEXT_LENGTH_EXCEEDED,
  ],
  [
    400,
    "This model's maximum context length is 4096 tokens. However, you requested 5000 tokens (2952 in the messages, 2048 in the completion).",
    null,
  ],
  [400, 'The prompt (total length 40000) is too long to fit into the model (context length 32768).', null],
  [
    422,
    'Input validation error: `inputs` tokens + `max_new_tokens` must be <= 32769. Given: 31000 `inputs` tokens and 2048 `max_new_tokens`',
    null,
  ],
  [400, 'Prompt contains 40000 tokens, too large for model with 32768 maximum context length', null],
  [400, 'the request exceeds the available context size, try increasing it', 'exceed_context_size_error'],
  [413, 'prompt is too long: 210000 tokens > 200000 maximum', null],
  [400, 'Please reduce the length of the messages or completion.', CONTEXT_LENGTH_EXCEEDED],
];

describe('isContextLengthExceeded', () => {
  it.each(REFUSALS)('recognises %i %s', (status, message, code) => {
    expect(isContextLengthExceeded(status, message, code)).toBe(true);
  });

  it('leaves other 400s alone', () => {
    expect(isContextLengthExceeded(400, "Invalid value for 'temperature': must be <= 2", null)).toBe(false);
    expect(isContextLengthExceeded(400, 'model not supported', 'invalid_model')).toBe(false);
  });

  it('only reads client errors of the request itself (400, 413, 422)', () => {
    expect(isContextLengthExceeded(500, "This model's maximum context length is 8192 tokens", null)).toBe(
      false,
    );
    expect(isContextLengthExceeded(429, 'x', CONTEXT_LENGTH_EXCEEDED)).toBe(false);
  });
});

describe('errorFromStatus on a context-length refusal', () => {
  it.each(REFUSALS)(
    '%i %s becomes a permanent invalid_request_error with code context_length_exceeded',
    (status, message, code) => {
      const error = errorFromStatus(status, `together: ${message}`, { code });
      expect(error).toBeInstanceOf(InvalidRequestError);
      expect(error.retryable).toBe(false);
      expect(error.toRecord()).toEqual({
        message: `together: ${message}`,
        type: 'invalid_request_error',
        code: CONTEXT_LENGTH_EXCEEDED,
      });
    },
  );

  it('keeps the code of any other 400', () => {
    expect(errorFromStatus(400, 'bad temperature', { code: 'invalid_value' }).code).toBe('invalid_value');
  });
});

describe('failedForContextLength', () => {
  it('is true of a failed call with the code, false otherwise', () => {
    const error = { message: 'm', type: 'invalid_request_error', code: CONTEXT_LENGTH_EXCEEDED };
    expect(failedForContextLength({ status: 'failed', error })).toBe(true);
    expect(failedForContextLength({ status: 'failed', error: { ...error, code: null } })).toBe(false);
    expect(failedForContextLength({ status: 'completed', error: null })).toBe(false);
  });
});
