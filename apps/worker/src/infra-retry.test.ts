import { describe, expect, it } from 'vitest';
import { decideInfraRetry, INFRA_RETRY_POLICY, type InfraRetryStreak } from './infra-retry.js';

const noJitter = () => 0;
const fullJitter = () => 1;

describe('decideInfraRetry', () => {
  it('starts a streak and waits the base delay', () => {
    expect(decideInfraRetry(undefined, 1000, INFRA_RETRY_POLICY, noJitter)).toEqual({
      retry: true,
      delayMs: 500,
      streak: { since: 1000, last: 1000, retries: 1 },
    });
  });

  it('doubles the wait up to the 30 s cap, never more, jitter only shortening it', () => {
    let streak: InfraRetryStreak | undefined;
    let now = 0;
    const delays: number[] = [];
    for (let index = 0; index < 12; index += 1) {
      const decision = decideInfraRetry(streak, now, INFRA_RETRY_POLICY, noJitter);
      if (!decision.retry) throw new Error('gave up too early');
      delays.push(decision.delayMs);
      streak = decision.streak;
      now += decision.delayMs;
    }
    expect(delays).toEqual([
      500, 1000, 2000, 4000, 8000, 16_000, 30_000, 30_000, 30_000, 30_000, 30_000, 30_000,
    ]);
    const jittered = decideInfraRetry(streak, now, INFRA_RETRY_POLICY, fullJitter);
    expect(jittered.retry && jittered.delayMs).toBe(22_500);
  });

  it('keeps retrying for the whole horizon, then counts the error as a failure', () => {
    let streak: InfraRetryStreak | undefined;
    let now = 0;
    let retries = 0;
    for (;;) {
      const decision = decideInfraRetry(streak, now, INFRA_RETRY_POLICY, noJitter);
      streak = decision.streak;
      if (!decision.retry) break;
      retries += 1;
      now += decision.delayMs;
    }
    expect(now).toBeGreaterThanOrEqual(INFRA_RETRY_POLICY.horizonMs);
    expect(now).toBeLessThan(INFRA_RETRY_POLICY.horizonMs + INFRA_RETRY_POLICY.maxDelayMs);
    // About two a minute once at the cap: an hour of retries, not three.
    expect(retries).toBeGreaterThan(120);
    expect(streak).toMatchObject({ since: 0, last: now });
  });

  it('starts over after a quiet spell longer than the streak gap', () => {
    const old: InfraRetryStreak = { since: 0, last: 50 * 60_000, retries: 90 };
    const later = old.last + INFRA_RETRY_POLICY.streakGapMs + 1;
    expect(decideInfraRetry(old, later, INFRA_RETRY_POLICY, noJitter)).toEqual({
      retry: true,
      delayMs: 500,
      streak: { since: later, last: later, retries: 1 },
    });
    // Within the gap the streak goes on, horizon and all.
    const soon = INFRA_RETRY_POLICY.horizonMs + 1;
    const ongoing: InfraRetryStreak = { since: 0, last: soon - 60_000, retries: 125 };
    expect(decideInfraRetry(ongoing, soon, INFRA_RETRY_POLICY, noJitter).retry).toBe(false);
  });
});
