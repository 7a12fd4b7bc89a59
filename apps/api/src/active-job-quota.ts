import { tenantActiveRequestsKey, type MoaQueues } from '@moa-queue/contract';
import type { Redis } from 'ioredis';
import { quotaExceeded } from './quota-error.js';

/** BullMQ states in which a request has ended: it no longer counts toward the quota. */
const ENDED_STATES = new Set(['completed', 'failed', 'unknown']);

/** How many entries' states are read per round trip while pruning. */
const PRUNE_CHUNK = 200;

/**
 * The `maxActiveJobs` quota: a tenant's queued plus running requests (jobs
 * and chat completions; batch items have their own quota). Each new request
 * takes a slot in its tenant's set before it is queued (add, then count, in
 * one transaction, so concurrent requests cannot both take the last slot).
 * Past the limit, the entries of requests that have ended are pruned (their
 * BullMQ state says so) and the count is taken again: the set needs nobody
 * to remove an entry when a request ends, so a crashed worker or a lost
 * write can never leave a tenant locked out.
 */
export interface ActiveJobQuota {
  /** Takes a slot for the request, or throws 429 `quota_active_jobs`. */
  reserve(tenant: string, requestId: string, createdAt: number, limit: number): Promise<void>;
  /** Gives the slot back (the request could not be queued). */
  release(tenant: string, requestId: string): Promise<void>;
}

/** Creates the quota over the request queue. */
export function createActiveJobQuota(queues: MoaQueues, redis: Redis): ActiveJobQuota {
  const keyOf = (tenant: string) => tenantActiveRequestsKey(queues.prefix, tenant);

  /** Removes the entries of ended requests, except `keep` (a request not queued yet, so still 'unknown'). */
  async function prune(tenant: string, keep: string): Promise<number> {
    const key = keyOf(tenant);
    const members = (await redis.zrange(key, 0, -1)).filter((id) => id !== keep);
    for (let start = 0; start < members.length; start += PRUNE_CHUNK) {
      const chunk = members.slice(start, start + PRUNE_CHUNK);
      const states = await Promise.all(chunk.map((id) => queues.requests.getJobState(id)));
      const ended = chunk.filter((_id, index) => ENDED_STATES.has(states[index] ?? 'unknown'));
      if (ended.length > 0) await redis.zrem(key, ...ended);
    }
    return redis.zcard(key);
  }

  return {
    async reserve(tenant, requestId, createdAt, limit) {
      const key = keyOf(tenant);
      const [, [, count]] = (await redis.multi().zadd(key, createdAt, requestId).zcard(key).exec()) as [
        unknown,
        [unknown, number],
      ];
      if (count <= limit) return;
      // Our own entry stays in the set while it is pruned, so it counts like any other.
      if ((await prune(tenant, requestId)) <= limit) return;
      await redis.zrem(key, requestId);
      throw quotaExceeded({
        code: 'quota_active_jobs',
        message: `Too many active jobs: this key may have ${limit} queued or running at once; retry when some have finished`,
      });
    },
    async release(tenant, requestId) {
      await redis.zrem(keyOf(tenant), requestId);
    },
  };
}
