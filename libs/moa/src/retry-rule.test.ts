import { describe, expect, it } from 'vitest';
import { CallCancelledError } from './errors/call-cancelled-error.js';
import { InvalidRequestError } from './errors/invalid-request-error.js';
import { ProviderRateLimitError } from './errors/rate-limit-error.js';
import { ProviderServerError } from './errors/server-error.js';
import { retryDecision, retryDelayMs } from './retry-rule.js';

describe('retryDecision', () => {
  const server = new ProviderServerError('busy', { status: 503 });

  it('retries a retryable error until maxAttempts, spending an attempt each time', () => {
    const first = retryDecision({ error: server, attempts: 1, maxAttempts: 3 });
    expect(first).toMatchObject({ action: 'retry', reason: 'server_error' });
    expect(retryDecision({ error: server, attempts: 2, maxAttempts: 3 }).action).toBe('retry');
    expect(retryDecision({ error: server, attempts: 3, maxAttempts: 3 })).toEqual({ action: 'fail' });
  });

  it('waits Retry-After on a 429 without spending an attempt, whatever the attempts', () => {
    const limited = new ProviderRateLimitError('slow down', { status: 429, retryAfterMs: 1234 });
    expect(retryDecision({ error: limited, attempts: 3, maxAttempts: 3 })).toEqual({
      action: 'wait',
      delayMs: 1234,
      reason: 'rate_limit',
    });
    const unsaid = new ProviderRateLimitError('slow down', { status: 429 });
    expect(
      retryDecision({ error: unsaid, attempts: 1, maxAttempts: 3, defaultRateLimitWaitMs: 50 }),
    ).toMatchObject({
      delayMs: 50,
    });
  });

  it('retries a 429 past its bounded waits by spending attempts', () => {
    const limited = new ProviderRateLimitError('slow down', { status: 429, retryAfterMs: 10 });
    const input = { error: limited, maxAttempts: 2, rateLimitWaits: 20, maxRateLimitWaits: 20 };
    expect(retryDecision({ ...input, attempts: 1 })).toEqual({
      action: 'retry',
      delayMs: 10,
      reason: 'rate_limit',
    });
    expect(retryDecision({ ...input, attempts: 2 })).toEqual({ action: 'fail' });
  });

  it('fails a permanent error, and any aborted call, at once', () => {
    expect(
      retryDecision({ error: new InvalidRequestError('bad', { status: 400 }), attempts: 1, maxAttempts: 3 }),
    ).toEqual({
      action: 'fail',
    });
    expect(retryDecision({ error: server, attempts: 1, maxAttempts: 3, aborted: true })).toEqual({
      action: 'fail',
    });
    expect(retryDecision({ error: new CallCancelledError('x'), attempts: 1, maxAttempts: 3 })).toEqual({
      action: 'fail',
    });
  });

  it('backs off exponentially unless the provider said how long', () => {
    expect(retryDelayMs({ retryAfterMs: 7000 }, 1)).toBe(7000);
    expect(retryDelayMs({ retryAfterMs: undefined }, 1)).toBeLessThanOrEqual(500);
    expect(retryDelayMs({ retryAfterMs: undefined }, 3)).toBeGreaterThan(1500);
  });
});
