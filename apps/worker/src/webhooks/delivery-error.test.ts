import { describe, expect, it } from 'vitest';
import { describeDeliveryError } from './delivery-error.js';
import { WebhookBlockedError } from './webhook-blocked-error.js';
import { WebhookTimeoutError } from './webhook-timeout-error.js';

const withCode = (code: string, message = 'some text') => Object.assign(new Error(message), { code });

describe('describeDeliveryError', () => {
  it('says why a target was blocked', () => {
    const error = new WebhookBlockedError(
      '10.0.0.5',
      '10.0.0.5',
      '10.0.0.5 is a private address (10.0.0.0/8)',
    );
    expect(describeDeliveryError(error)).toBe('blocked: 10.0.0.5 is a private address (10.0.0.0/8)');
  });

  it('says how long a timed-out delivery waited', () => {
    expect(describeDeliveryError(new WebhookTimeoutError(10_000))).toBe('timeout after 10000 ms');
  });

  it.each([
    ['ECONNREFUSED', 'connection refused'],
    ['ECONNRESET', 'connection reset'],
    ['ENOTFOUND', 'host not found'],
    ['EAI_AGAIN', 'DNS lookup failed (temporary)'],
    ['EHOSTUNREACH', 'host unreachable'],
    ['CERT_HAS_EXPIRED', 'TLS certificate expired'],
    ['ERR_TLS_CERT_ALTNAME_INVALID', 'TLS certificate does not match the host'],
    ['ERR_SSL_WRONG_VERSION_NUMBER', 'TLS error (ERR_SSL_WRONG_VERSION_NUMBER)'],
    ['EWHATEVER', 'network error (EWHATEVER)'],
  ])('names %s as "%s"', (code, reason) => {
    expect(describeDeliveryError(withCode(code))).toBe(reason);
  });

  it('never repeats an error message, which may hold the URL, payload or secret', () => {
    const leaky = 'POST https://user:pass@hooks.example/x?token=t0k3n whsec_c2VjcmV0 {"output":"private"}';
    expect(describeDeliveryError(new Error(leaky))).toBe('network error');
    expect(describeDeliveryError(withCode('ECONNREFUSED', leaky))).toBe('connection refused');
    expect(describeDeliveryError(withCode(`E ${leaky}`, leaky))).toBe('network error');
    expect(describeDeliveryError(withCode('toString'))).toBe('network error');
    expect(describeDeliveryError('a string')).toBe('network error');
    expect(describeDeliveryError(null)).toBe('network error');
    expect(describeDeliveryError(undefined)).toBe('network error');
  });
});
