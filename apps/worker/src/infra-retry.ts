import { isInfrastructureError, type ConnectionStateLogger } from '@moa-queue/contract';
import { DelayedError, ErrorCode, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';

/**
 * How a job waits out Redis trouble. An infrastructure error inside a
 * processor does not spend one of the job's attempts (those are for the
 * job's own faults, a provider's for a call): the job goes back to the
 * delayed set and runs again after a backoff of 0.5 s doubling to a cap of
 * 30 s, with jitter, for as long as the errors go on, up to the horizon.
 * Past the horizon, infrastructure errors count as ordinary failures.
 */
export interface InfraRetryPolicy {
  /** First wait. */
  baseDelayMs: number;
  /** Longest wait between two runs. */
  maxDelayMs: number;
  /** How long a streak of infrastructure errors is waited out before they count as ordinary failures. */
  horizonMs: number;
  /** Infrastructure errors of a job further apart than this start a new streak. */
  streakGapMs: number;
}

/** The policy: 30 s cap, one hour horizon, streaks broken by 10 quiet minutes. */
export const INFRA_RETRY_POLICY: InfraRetryPolicy = {
  baseDelayMs: 500,
  maxDelayMs: 30_000,
  horizonMs: 60 * 60_000,
  streakGapMs: 10 * 60_000,
};

/** A job's current streak of infrastructure errors. */
export interface InfraRetryStreak {
  /** When the streak's first error happened (ms since the epoch). */
  since: number;
  /** When its latest error happened. */
  last: number;
  /** Retries granted in the streak so far. */
  retries: number;
}

/** What to do about an infrastructure error. */
export type InfraRetryDecision =
  { retry: true; delayMs: number; streak: InfraRetryStreak } | { retry: false; streak: InfraRetryStreak };

/**
 * Decides about one more infrastructure error of a job, given its streak so
 * far (undefined: none, or it ended more than `streakGapMs` ago). Retry
 * after `baseDelayMs · 2^retries`, capped at `maxDelayMs`, minus up to a
 * quarter of jitter (so a fleet of jobs that failed together does not come
 * back together); no retry once the streak is older than `horizonMs`.
 */
export function decideInfraRetry(
  previous: InfraRetryStreak | undefined,
  now: number,
  policy: InfraRetryPolicy = INFRA_RETRY_POLICY,
  random: () => number = Math.random,
): InfraRetryDecision {
  const continues = previous !== undefined && now - previous.last <= policy.streakGapMs;
  const since = continues ? previous.since : now;
  const retries = continues ? previous.retries : 0;
  if (now - since >= policy.horizonMs) return { retry: false, streak: { since, last: now, retries } };
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.min(retries, 30));
  const delayMs = Math.max(1, Math.round(ceiling * (1 - 0.25 * random())));
  return { retry: true, delayMs, streak: { since, last: now, retries: retries + 1 } };
}

/** BullMQ's codes for "this run no longer holds its job". */
const LOST_JOB_CODES: ReadonlySet<unknown> = new Set([
  ErrorCode.JobNotExist,
  ErrorCode.JobLockNotExist,
  ErrorCode.JobNotInState,
  ErrorCode.JobLockMismatch,
]);

/**
 * Whether BullMQ refused a command because this run no longer holds its job:
 * its lock lapsed or another worker took it (after a stall), or the job moved
 * or went away. Not a failure of the job: whoever holds it now carries on.
 */
export function isLostJobError(error: unknown): boolean {
  return error instanceof Error && LOST_JOB_CODES.has((error as { code?: unknown }).code);
}

/** A BullMQ processor, as the worker runs it. */
export type Processor<Data, Result> = (
  job: Job<Data, Result>,
  token?: string,
  signal?: AbortSignal,
) => Promise<Result>;

/** What {@link withInfraRetry} needs. */
export interface InfraRetryDependencies {
  /** Our own commands connection (streaks are kept there). */
  redis: Redis;
  prefix: string;
  /** The process's Redis state: told about every infrastructure error. */
  health: Pick<ConnectionStateLogger, 'onError'>;
  logger: Logger;
  /** The workers' lock duration: holding a job longer than this is pointless (its lock is gone). */
  lockDurationMs: number;
  /** Told about a job whose lock lapsed while Redis refused to move it (see stall-forgiveness.ts). */
  onLockLost?: (job: Job) => void;
  policy?: InfraRetryPolicy;
}

/** Where a job's streak is kept: a small key that expires when the streak would end anyway. */
export function infraStreakKey(prefix: string, queueName: string, jobId: string): string {
  return `${prefix}:moa-infra-retry:${queueName}:${jobId}`;
}

/** Streaks this process could not store (Redis refusing writes): kept here meanwhile. */
const MAX_REMEMBERED_STREAKS = 10_000;

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function parseStreak(text: string | null): InfraRetryStreak | undefined {
  if (!text) return undefined;
  try {
    const value = JSON.parse(text) as Partial<InfraRetryStreak>;
    return typeof value.since === 'number' &&
      typeof value.last === 'number' &&
      typeof value.retries === 'number'
      ? { since: value.since, last: value.last, retries: value.retries }
      : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Wraps a processor so that an infrastructure error thrown by it costs the
 * job no attempt: the job is moved to the delayed set for the backoff
 * (`job.moveToDelayed`, then `DelayedError`, which BullMQ takes as "not a
 * failure") and runs again from the start. Every processor is written to be
 * re-run (deterministic ids, writes by position, once-only accounting), so
 * running again is always safe.
 *
 * When Redis refuses even that move, the job is held here and the move
 * retried until it lands or the job's lock is gone; then BullMQ's stalled
 * check hands the job back to a queue once Redis serves again, and the lapse
 * is reported through `onLockLost` so it is not counted as a crash.
 */
export function withInfraRetry<Data, Result>(
  queueName: string,
  processor: Processor<Data, Result>,
  dependencies: InfraRetryDependencies,
): Processor<Data, Result> {
  const { redis, health, logger } = dependencies;
  const policy = dependencies.policy ?? INFRA_RETRY_POLICY;
  const remembered = new Map<string, InfraRetryStreak>();

  async function loadStreak(key: string): Promise<InfraRetryStreak | undefined> {
    const local = remembered.get(key);
    try {
      const stored = parseStreak(await redis.get(key));
      // Whichever is further along: another worker may have stored it, or this one could not.
      if (!stored) return local;
      if (!local) return stored;
      return stored.retries >= local.retries ? stored : local;
    } catch (error) {
      health.onError(error);
      return local;
    }
  }

  async function saveStreak(key: string, streak: InfraRetryStreak): Promise<void> {
    if (remembered.size >= MAX_REMEMBERED_STREAKS) {
      const cutoff = Date.now() - policy.streakGapMs;
      for (const [entry, value] of remembered) if (value.last < cutoff) remembered.delete(entry);
      if (remembered.size >= MAX_REMEMBERED_STREAKS) remembered.delete(remembered.keys().next().value!);
    }
    remembered.set(key, streak);
    try {
      await redis.set(key, JSON.stringify(streak), 'PX', policy.streakGapMs);
    } catch (error) {
      health.onError(error);
    }
  }

  /** Moves the job to the delayed set, holding it while Redis refuses; false when its lock was lost meanwhile. */
  async function moveToDelayed(job: Job<Data, Result>, token: string | undefined, delayMs: number) {
    const heldSince = Date.now();
    for (let hold = 0; ; hold += 1) {
      try {
        await job.moveToDelayed(Date.now() + delayMs, token);
        return true;
      } catch (error) {
        if (!isInfrastructureError(error)) return false; // the lock is gone: the stalled check has the job
        health.onError(error);
        if (Date.now() - heldSince > dependencies.lockDurationMs) return false;
        await sleep(Math.min(250 * 2 ** hold, 5000));
      }
    }
  }

  return async function processWithInfraRetry(job, token, signal) {
    try {
      return await processor(job, token, signal);
    } catch (error) {
      if (!isInfrastructureError(error)) throw error;
      health.onError(error);
      const key = infraStreakKey(dependencies.prefix, queueName, job.id ?? '');
      const decision = decideInfraRetry(await loadStreak(key), Date.now(), policy);
      await saveStreak(key, decision.streak);
      const about = { queue: queueName, jobId: job.id, error: (error as Error).message };
      if (!decision.retry) {
        logger.warn(
          { ...about, sinceMs: Date.now() - decision.streak.since },
          'redis errors for longer than the retry horizon: counting this one as a failed attempt',
        );
        throw error;
      }
      logger.debug(
        { ...about, delayMs: decision.delayMs, retries: decision.streak.retries },
        'redis error: job delayed',
      );
      if (!(await moveToDelayed(job, token, decision.delayMs))) dependencies.onLockLost?.(job);
      // Not a failure: BullMQ leaves the job where it is now (delayed, or active without a lock).
      throw new DelayedError();
    }
  };
}
