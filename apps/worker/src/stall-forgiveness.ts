import type { ConnectionStateLogger } from '@moa-queue/contract';
import type { Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';

/**
 * BullMQ fails a job that has stalled more than `maxStalledCount` times: the
 * guard against a job that crashes every worker that runs it. But a lock
 * also lapses when Redis refuses to renew it (full, read-only, unreachable
 * for longer than the lock), and then the job stalls through no fault of its
 * own; over an hour of flapping Redis that would fail accepted work.
 *
 * This process is alive and knows when that happened: a lock it failed to
 * keep while it saw Redis in trouble. It takes such a stall back (the job's
 * stall counter, which BullMQ raises when it requeues the job, is lowered by
 * one), so `maxStalledCount` keeps counting what it is for: worker deaths.
 * A lock lost with no outage in sight (a blocked event loop) still counts.
 */

/** Lowers a job's stall counter by one, if the job still exists (never creates a key). */
const FORGIVE_STALL = `if redis.call('EXISTS', KEYS[1]) == 1 then
  return redis.call('HINCRBY', KEYS[1], 'stc', -1)
end
return false`;

/** Options of {@link createStallForgiveness}. */
export interface StallForgivenessOptions {
  redis: Redis;
  prefix: string;
  health: ConnectionStateLogger;
  logger: Logger;
  lockDurationMs: number;
}

/** Forgives the stalls that follow locks lost to a Redis outage. */
export interface StallForgiveness {
  /** A job of `queueName` lost its lock in this process: forgive the stall if an outage explains it. */
  lockLost(queueName: string, jobIds: string[]): void;
  /** Listens to a worker's `lockRenewalFailed`. */
  watch(worker: Worker): void;
}

export function createStallForgiveness(options: StallForgivenessOptions): StallForgiveness {
  const { redis, health, logger } = options;
  /** A lock lost this long after the last outage error is still the outage's doing. */
  const explainsMs = 2 * options.lockDurationMs + 5000;
  /** Jobs forgiven lately: a lapsed lock is reported at every renewal until the job's run ends, but stalls once. */
  const forgiven = new Map<string, number>();

  async function forgive(jobKey: string): Promise<void> {
    // Redis has just been in trouble: wait for it, and retry a few times.
    for (let attempt = 0; attempt < 10; attempt += 1) {
      await health.whenHealthy();
      try {
        await redis.eval(FORGIVE_STALL, 1, jobKey);
        return;
      } catch (error) {
        if (!health.onError(error)) throw error;
        await new Promise((resolve) => setTimeout(resolve, 1000 * (attempt + 1)));
      }
    }
  }

  const forgiveness: StallForgiveness = {
    lockLost(queueName, jobIds) {
      const now = Date.now();
      // The health's last error: any infrastructure error of this process, its own probe's included.
      if (health.healthy && now - health.lastErrorAt > explainsMs) {
        logger.warn(
          { queue: queueName, jobs: jobIds.length },
          'lost the lock of running jobs: they will run again',
        );
        return;
      }
      for (const [key, at] of forgiven) if (now - at > explainsMs) forgiven.delete(key);
      const fresh = jobIds.filter((id) => {
        const key = `${queueName}:${id}`;
        const seen = forgiven.has(key);
        forgiven.set(key, now);
        return !seen;
      });
      if (fresh.length === 0) return;
      logger.info(
        { queue: queueName, jobs: fresh.length },
        'locks lapsed while redis was unavailable: those jobs run again, not counted as stalls',
      );
      for (const id of fresh) {
        forgive(`${options.prefix}:${queueName}:${id}`).catch((error: unknown) =>
          logger.warn({ queue: queueName, jobId: id, error: String(error) }, 'cannot forgive a stall'),
        );
      }
    },
    watch(worker) {
      worker.on('lockRenewalFailed', (jobIds: string[]) => forgiveness.lockLost(worker.name, jobIds));
    },
  };
  return forgiveness;
}
