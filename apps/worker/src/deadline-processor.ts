import {
  publishCallCancels,
  CANCEL_MARKER_TTL_SECONDS,
  deadlineKey,
  jobDataSchemasFor,
  type DeadlineJobData,
  type MoaQueues,
} from '@moa-queue/contract';
import type { MoaConfig } from '@moa-queue/moa';
import { Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { parseJobData } from './parse-job-data.js';

/** What the deadline processor needs. */
export interface DeadlineDependencies {
  queues: MoaQueues;
  redis: Redis;
  /** Job data is checked against it: a deadline names only configured providers. */
  config: MoaConfig;
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
  const schemas = jobDataSchemasFor(dependencies.config);
  return async function processDeadline(job: Job<DeadlineJobData, void>): Promise<void> {
    // Nothing of the job is used before its data is validated: anything that reaches Redis can add a job.
    const { requestId, layer, layerTimeoutMs, calls } = parseJobData(schemas.deadline, job.data);
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
      await publishCallCancels(redis, queues.prefix, abandoned, 'layer_deadline');
      dependencies.logger.info(
        { requestId, layer, abandoned: abandoned.length, layerTimeoutMs },
        'layer deadline: abandoned unfinished calls',
      );
    }
  };
}
