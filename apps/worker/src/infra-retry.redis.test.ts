import { createConnectionStateLogger } from '@moa-queue/contract';
import { ProviderServerError } from '@moa-queue/moa';
import { pollUntil, uniquePrefix } from '@moa-queue/test-support';
import { DelayedError, Job, Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import {
  INFRA_RETRY_POLICY,
  infraStreakKey,
  withInfraRetry,
  type InfraRetryDependencies,
} from './infra-retry.js';
import { createStallForgiveness } from './stall-forgiveness.js';

/** What ioredis hands over when Redis refuses a write under `noeviction`. */
function oom(): Error {
  const error = new Error("OOM command not allowed when used memory > 'maxmemory'.");
  error.name = 'ReplyError';
  return error;
}

const FAST = { ...INFRA_RETRY_POLICY, baseDelayMs: 20, maxDelayMs: 100 };
const logger = pino({ level: 'silent' });

describe('withInfraRetry on a real queue', () => {
  let redis: Redis;
  let queue: Queue;
  let worker: Worker | undefined;
  const prefix = uniquePrefix('infra-retry');
  const name = 'infra-retry-test';
  beforeAll(() => {
    redis = new Redis(inject('redisUrl'), { maxRetriesPerRequest: null });
    queue = new Queue(name, { connection: redis, prefix });
  });
  afterAll(async () => {
    await worker?.close();
    await queue.close();
    redis.disconnect();
  });

  it('a Redis error costs no attempt and is retried until it passes; a provider 500 costs one each time', async () => {
    const runs = new Map<string, number>();
    const health = createConnectionStateLogger(logger, 'test');
    worker = new Worker(
      name,
      withInfraRetry(
        name,
        async (job: Job) => {
          const run = (runs.get(job.id!) ?? 0) + 1;
          runs.set(job.id!, run);
          // More Redis errors in a row than the job has attempts.
          if (job.name === 'redis-trouble' && run <= 5) throw oom();
          if (job.name === 'provider-trouble') throw new ProviderServerError('HTTP 500', { status: 500 });
          return { attemptsMadeWhenDone: job.attemptsMade, run };
        },
        { redis, prefix, health, logger, lockDurationMs: 30_000, policy: FAST },
      ),
      { connection: redis, prefix, concurrency: 2 },
    );
    const options = { attempts: 3, backoff: { type: 'fixed', delay: 10 } };
    await queue.add('redis-trouble', {}, { ...options, jobId: 'redis-trouble' });
    await queue.add('provider-trouble', {}, { ...options, jobId: 'provider-trouble' });

    const done = await pollUntil(
      async () => [await queue.getJobState('redis-trouble'), await queue.getJobState('provider-trouble')],
      (states) => states[0] === 'completed' && states[1] === 'failed',
      60_000,
    );
    expect(done).toEqual(['completed', 'failed']);
    const survived = (await Job.fromId(queue, 'redis-trouble'))!;
    // Six runs, the sixth on its first attempt: five Redis errors spent none of the three.
    expect(survived.returnvalue).toEqual({ attemptsMadeWhenDone: 0, run: 6 });
    expect(survived.attemptsMade).toBe(1);
    const streak = JSON.parse((await redis.get(infraStreakKey(prefix, name, 'redis-trouble')))!) as {
      retries: number;
    };
    expect(streak.retries).toBe(5);
    expect(health.healthy).toBe(false); // nothing reported the end here: that is the probe's job

    const failed = (await Job.fromId(queue, 'provider-trouble'))!;
    expect(failed.attemptsMade).toBe(3);
    expect(runs.get('provider-trouble')).toBe(3);
    expect(failed.failedReason).toBe('HTTP 500');
    health.close();
  });
});

describe('withInfraRetry when Redis refuses even the move', () => {
  function dependencies(overrides: Partial<InfraRetryDependencies> = {}): InfraRetryDependencies {
    const store = new Map<string, string>();
    return {
      redis: {
        get: async (key: string) => store.get(key) ?? null,
        set: async (key: string, value: string) => {
          store.set(key, value);
          return 'OK';
        },
      } as unknown as Redis,
      prefix: 'p',
      health: { onError: () => true },
      logger,
      lockDurationMs: 30_000,
      policy: FAST,
      ...overrides,
    };
  }

  it('holds the job and moves it once Redis takes writes again', async () => {
    const moveToDelayed = vi
      .fn()
      .mockRejectedValueOnce(oom())
      .mockRejectedValueOnce(oom())
      .mockResolvedValueOnce(undefined);
    const onLockLost = vi.fn();
    const processor = withInfraRetry<unknown, unknown>(
      'q',
      async () => {
        throw oom();
      },
      dependencies({ onLockLost }),
    );
    await expect(processor({ id: 'j1', moveToDelayed } as unknown as Job, 'token')).rejects.toBeInstanceOf(
      DelayedError,
    );
    expect(moveToDelayed).toHaveBeenCalledTimes(3);
    expect(moveToDelayed.mock.calls.every((call) => call[1] === 'token')).toBe(true);
    expect(onLockLost).not.toHaveBeenCalled();
  });

  it('reports a lock lost meanwhile, and leaves the job to the stalled check', async () => {
    const moveToDelayed = vi
      .fn()
      .mockRejectedValueOnce(oom())
      .mockRejectedValueOnce(new Error('Missing lock for job j2. moveToDelayed'));
    const onLockLost = vi.fn();
    const processor = withInfraRetry<unknown, unknown>(
      'q',
      async () => {
        throw oom();
      },
      dependencies({ onLockLost }),
    );
    const job = { id: 'j2', moveToDelayed } as unknown as Job;
    await expect(processor(job, 'token')).rejects.toBeInstanceOf(DelayedError);
    expect(onLockLost).toHaveBeenCalledWith(job);
  });

  it('past the horizon, rethrows the Redis error so that it counts as a failed attempt', async () => {
    const deps = dependencies();
    const longAgo = Date.now() - FAST.horizonMs - 1000;
    await deps.redis.set(
      infraStreakKey('p', 'q', 'j3'),
      JSON.stringify({ since: longAgo, last: Date.now() - 5000, retries: 130 }),
    );
    const error = oom();
    const moveToDelayed = vi.fn();
    const processor = withInfraRetry<unknown, unknown>(
      'q',
      async () => {
        throw error;
      },
      deps,
    );
    await expect(processor({ id: 'j3', moveToDelayed } as unknown as Job, 'token')).rejects.toBe(error);
    expect(moveToDelayed).not.toHaveBeenCalled();
  });

  it('leaves every other error alone', async () => {
    const error = new ProviderServerError('HTTP 500', { status: 500 });
    const moveToDelayed = vi.fn();
    const processor = withInfraRetry<unknown, unknown>(
      'q',
      async () => {
        throw error;
      },
      dependencies(),
    );
    await expect(processor({ id: 'j4', moveToDelayed } as unknown as Job)).rejects.toBe(error);
    expect(moveToDelayed).not.toHaveBeenCalled();
  });
});

describe('stall forgiveness on real Redis', () => {
  it("lowers an existing job's stall counter and never creates a key for a job that is gone", async () => {
    const redis = new Redis(inject('redisUrl'), { maxRetriesPerRequest: null });
    const prefix = uniquePrefix('forgive');
    const queue = new Queue('forgive-test', { connection: redis, prefix });
    try {
      await queue.add('x', {}, { jobId: 'here' });
      const jobKey = queue.toKey('here');
      await redis.hset(jobKey, 'stc', 3);
      const health = createConnectionStateLogger(logger, 'test', { settleMs: 0 });
      const forgiveness = createStallForgiveness({ redis, prefix, health, logger, lockDurationMs: 1000 });
      // An outage that has just ended explains the lost locks.
      health.onError(new Error('Command timed out'));
      health.onReady();
      forgiveness.lockLost('forgive-test', ['here', 'gone']);
      await pollUntil(
        () => redis.hget(jobKey, 'stc'),
        (value) => value === '2',
        10_000,
      );
      expect(await redis.exists(queue.toKey('gone'))).toBe(0);
      expect((await Job.fromId(queue, 'here'))!.stalledCounter).toBe(2);
      health.close();
    } finally {
      await queue.obliterate({ force: true });
      await queue.close();
      redis.disconnect();
    }
  });
});
