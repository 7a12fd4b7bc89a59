import { describe, it, expect } from 'vitest';
import { backoffDelayMs } from './backoff.js';

describe('backoffDelayMs', () => {
  it('doubles from 500 ms up to an 8 s cap without jitter', () => {
    const noJitter = { random: () => 0 };
    const delays = [1, 2, 3, 4, 5, 6, 7, 10].map((retry) => backoffDelayMs(retry, noJitter));
    expect(delays).toEqual([500, 1000, 2000, 4000, 8000, 8000, 8000, 8000]);
  });

  it('takes off at most 25% as jitter', () => {
    const maxJitter = { random: () => 0.999 };
    for (const [retry, base] of [
      [1, 500],
      [2, 1000],
      [3, 2000],
      [4, 4000],
      [5, 8000],
      [9, 8000],
    ] as const) {
      const delay = backoffDelayMs(retry, maxJitter);
      expect(delay).toBeLessThan(base);
      expect(delay).toBeGreaterThanOrEqual(base * 0.75);
      expect(delay).toBe(Math.round(base * (1 - 0.999 * 0.25)));
    }
  });

  it('stays within [75%, 100%] of the base with the real random source', () => {
    for (let i = 0; i < 200; i += 1) {
      const delay = backoffDelayMs(3);
      expect(delay).toBeGreaterThanOrEqual(1500);
      expect(delay).toBeLessThanOrEqual(2000);
    }
  });

  it('treats retry 0 or below like the first retry', () => {
    expect(backoffDelayMs(0, { random: () => 0 })).toBe(500);
    expect(backoffDelayMs(-3, { random: () => 0 })).toBe(500);
  });

  it('honours custom initial and maximum delays', () => {
    const options = { initialDelayMs: 100, maxDelayMs: 250, random: () => 0 };
    expect([1, 2, 3, 4].map((retry) => backoffDelayMs(retry, options))).toEqual([100, 200, 250, 250]);
  });
});
