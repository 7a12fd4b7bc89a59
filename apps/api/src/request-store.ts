import {
  markCancelled,
  publishCallCancels,
  requestCallIds,
  indexTenantRequests,
  loadRequest,
  snapshotOf,
  type MoaQueues,
  type RequestJobData,
  type RequestSnapshot,
} from '@moa-queue/contract';
import { quotasOf, type MoaConfig } from '@moa-queue/moa';
import type { Redis } from 'ioredis';
import { createActiveJobQuota } from './active-job-quota.js';
import { canAccess, type Principal } from './principal.js';

/**
 * Reads and writes MoA requests as orchestrator jobs in Redis. The API keeps
 * no state of its own. Reads and cancels take the caller: a request the
 * caller may not access is answered exactly as one that does not exist.
 */
export interface RequestStore {
  /** Queues a request, within its tenant's `maxActiveJobs` (else a 429 `quota_active_jobs`). */
  create(data: RequestJobData, options?: { priority?: number }): Promise<RequestSnapshot>;
  get(requestId: string, caller: Principal): Promise<RequestSnapshot | undefined>;
  /** Marks a request cancelled, removes its calls that have not started and aborts running ones. */
  cancel(requestId: string, caller: Principal): Promise<RequestSnapshot | undefined>;
}

/** Creates the store over the shared queues. */
export function createRequestStore(queues: MoaQueues, redis: Redis, config: MoaConfig): RequestStore {
  const activeJobs = createActiveJobQuota(queues, redis);
  return {
    async create(data, options = {}) {
      const { maxActiveJobs } = quotasOf(config, data.tenant);
      await activeJobs.reserve(data.tenant, data.requestId, data.createdAt, maxActiveJobs);
      try {
        await queues.requests.add('moa', data, {
          jobId: data.requestId,
          ...(options.priority ? { priority: options.priority } : {}),
        });
      } catch (error) {
        await activeJobs.release(data.tenant, data.requestId).catch(() => undefined);
        throw error;
      }
      await indexTenantRequests(redis.multi(), queues.prefix, data.tenant, [data]).exec();
      return {
        data,
        status: 'queued',
        finishedOn: undefined,
        progress: undefined,
        result: undefined,
        failedReason: undefined,
        deliveries: data.webhook ? [] : undefined,
      };
    },
    async get(requestId, caller) {
      const loaded = await loadRequest(queues, redis, requestId);
      if (!loaded || !canAccess(caller, loaded.job.data.tenant)) return undefined;
      return snapshotOf(queues, redis, loaded);
    },
    async cancel(requestId, caller) {
      const loaded = await loadRequest(queues, redis, requestId);
      if (!loaded || !canAccess(caller, loaded.job.data.tenant)) return undefined;
      const { job, state } = loaded;
      if (state === 'completed' || state === 'failed') return snapshotOf(queues, redis, loaded);
      await markCancelled(redis, queues.prefix, requestId);
      if (state === 'waiting-children') {
        // Calls not yet started are removed and running ones aborted by their
        // workers; then BullMQ wakes the orchestrator, which sees the marker
        // and ends as cancelled without making another call.
        await job.removeUnprocessedChildren();
        await publishCallCancels(
          redis,
          queues.prefix,
          requestCallIds(requestId, job.data.preset),
          'cancelled',
        );
      }
      return snapshotOf(queues, redis, { ...loaded, cancelled: true });
    },
  };
}
