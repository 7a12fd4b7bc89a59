import { describe, it, expect } from 'vitest';
import { retryAfterMsFromHeaders, type HeaderLookup } from './retry-after.js';

function headers(values: Record<string, string>): Headers {
  return new Headers(values);
}

describe('retryAfterMsFromHeaders', () => {
  it('is undefined without headers or without any rate-limit header', () => {
    expect(retryAfterMsFromHeaders(undefined)).toBeUndefined();
    expect(retryAfterMsFromHeaders(headers({}))).toBeUndefined();
    expect(retryAfterMsFromHeaders(headers({ 'content-type': 'application/json' }))).toBeUndefined();
  });

  it('reads retry-after-ms', () => {
    expect(retryAfterMsFromHeaders(headers({ 'retry-after-ms': '1234' }))).toBe(1234);
    expect(retryAfterMsFromHeaders(headers({ 'retry-after-ms': '0' }))).toBe(0);
    expect(retryAfterMsFromHeaders(headers({ 'retry-after-ms': '12.5' }))).toBe(12.5);
  });

  it('prefers retry-after-ms over retry-after', () => {
    expect(retryAfterMsFromHeaders(headers({ 'retry-after-ms': '250', 'retry-after': '10' }))).toBe(250);
  });

  it('falls back to retry-after when retry-after-ms is not a valid number', () => {
    expect(retryAfterMsFromHeaders(headers({ 'retry-after-ms': 'soon', 'retry-after': '3' }))).toBe(3000);
    expect(retryAfterMsFromHeaders(headers({ 'retry-after-ms': '-5', 'retry-after': '3' }))).toBe(3000);
  });

  it('reads retry-after in seconds', () => {
    expect(retryAfterMsFromHeaders(headers({ 'retry-after': '2' }))).toBe(2000);
    expect(retryAfterMsFromHeaders(headers({ 'retry-after': '0' }))).toBe(0);
    expect(retryAfterMsFromHeaders(headers({ 'retry-after': '1.5' }))).toBe(1500);
  });

  it('reads retry-after as an HTTP date relative to now', () => {
    const now = Date.parse('Wed, 21 Oct 2015 07:28:00 GMT');
    expect(retryAfterMsFromHeaders(headers({ 'retry-after': 'Wed, 21 Oct 2015 07:28:30 GMT' }), now)).toBe(
      30_000,
    );
  });

  it('never returns a negative wait for a date in the past', () => {
    const now = Date.parse('Wed, 21 Oct 2015 07:28:00 GMT');
    expect(retryAfterMsFromHeaders(headers({ 'retry-after': 'Wed, 21 Oct 2015 07:27:00 GMT' }), now)).toBe(0);
  });

  it('ignores an unparseable retry-after and falls through to the reset headers', () => {
    expect(retryAfterMsFromHeaders(headers({ 'retry-after': 'later' }))).toBeUndefined();
    expect(
      retryAfterMsFromHeaders(headers({ 'retry-after': 'later', 'x-ratelimit-reset-requests': '2s' })),
    ).toBe(2000);
  });

  it('parses x-ratelimit-reset durations', () => {
    const reset = (value: string) =>
      retryAfterMsFromHeaders(headers({ 'x-ratelimit-reset-requests': value }));
    expect(reset('1s')).toBe(1000);
    expect(reset('6m0s')).toBe(360_000);
    expect(reset('20ms')).toBe(20);
    expect(reset('1h2m')).toBe(3_720_000);
    expect(reset('1m30s')).toBe(90_000);
    expect(reset('0.5s')).toBe(500);
    expect(reset('7')).toBe(7000);
    expect(reset('never')).toBeUndefined();
  });

  it('reads x-ratelimit-reset-tokens', () => {
    expect(retryAfterMsFromHeaders(headers({ 'x-ratelimit-reset-tokens': '6m0s' }))).toBe(360_000);
  });

  it('takes the larger of the requests and tokens resets', () => {
    expect(
      retryAfterMsFromHeaders(
        headers({ 'x-ratelimit-reset-requests': '1s', 'x-ratelimit-reset-tokens': '6m0s' }),
      ),
    ).toBe(360_000);
    expect(
      retryAfterMsFromHeaders(
        headers({ 'x-ratelimit-reset-requests': '2s', 'x-ratelimit-reset-tokens': '20ms' }),
      ),
    ).toBe(2000);
  });

  it('prefers retry-after over the reset headers', () => {
    expect(retryAfterMsFromHeaders(headers({ 'retry-after': '1', 'x-ratelimit-reset-tokens': '6m0s' }))).toBe(
      1000,
    );
  });

  it('accepts any lookup with get(), such as a plain object adapter', () => {
    const values: Record<string, string> = { 'retry-after': '4' };
    const lookup: HeaderLookup = { get: (name) => values[name] };
    expect(retryAfterMsFromHeaders(lookup)).toBe(4000);
    expect(retryAfterMsFromHeaders({ get: () => null })).toBeUndefined();
  });
});
