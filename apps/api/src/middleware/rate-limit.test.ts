import { describe, expect, it } from 'vitest';
import { resetDuration } from './rate-limit.js';

describe('resetDuration', () => {
  it.each([
    [0, '0ms'],
    [250.2, '251ms'],
    [999, '999ms'],
    [1000, '1s'],
    [1001, '2s'],
    [59_000, '59s'],
    [60_000, '1m0s'],
    [361_000, '6m1s'],
  ])('writes %d ms as %s, as OpenAI does', (milliseconds, expected) => {
    expect(resetDuration(milliseconds)).toBe(expected);
  });
});
