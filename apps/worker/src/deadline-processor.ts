import {
  cancelCallsChannel,
  CANCEL_MARKER_TTL_SECONDS,
  deadlineKey,
  type DeadlineJobData,
  type MoaQueues,
} from '@moa-queue/contract';
import { Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';

/** What the deadline processor needs. */
export interface DeadlineDependencies {
  queues: MoaQueues;
  redis: Redis;
  logger: Logger;
}

/**
 * Enforces a layer's straggler deadline: marks it passed, detaches every
 * call of the layer that has not finished from its request (so BullMQ wakes
 * the orchestrator as soon as none is left), removes the ones that never
 * started, and asks the workers holding the others to abort them.
 */
export function createDeadlineProcessor(dependencies: DeadlineDependencies) {
  const { queues, redis } = dependencies;
  return async function processDeadline(job: Job<DeadlineJobData, void>): Promise<void> {
    const { requestId, layer, calls } = job.data;
    await redis.set(deadlineKey(queues.prefix, requestId, layer), '1', 'EX', CANCEL_MARKER_TTL_SECONDS);
    const abandoned: string[] = [];
    for (const call of calls) {
      const child = await Job.fromId(queues.llm(call.provider), call.jobId);
      if (!child) continue;
      const state = await child.getState();
      if (state === 'completed' || state === 'failed' || !child.parentKey) continue;
      await child.removeChildDependency();
      abandoned.push(call.jobId);
      // A call that has not started is simply dropped; a running one is aborted below.
      if (state !== 'active') await child.remove().catch(() => undefined);
    }
    if (abandoned.length > 0) {
      await redis.publish(cancelCallsChannel(queues.prefix), JSON.stringify(abandoned));
      dependencies.logger.info(
        { requestId, layer, abandoned: abandoned.length, layerTimeoutMs: job.data.layerTimeoutMs },
        'layer deadline: abandoned unfinished calls',
      );
    }
  };
}
