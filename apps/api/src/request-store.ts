import {
  callJobId,
  cancelCallsChannel,
  cancelKey,
  CANCEL_MARKER_TTL_SECONDS,
  REQUEST_ID_PATTERN,
  type MoaQueues,
  type RequestJobData,
  type RequestProgress,
  type RequestStatus,
} from '@moa-queue/contract';
import { agentsOfLayer, layerCount, type MoaResult } from '@moa-queue/moa';
import { Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { RequestSnapshot } from './job-view.js';

/** Reads and writes MoA requests as orchestrator jobs in Redis. The API keeps no state of its own. */
export interface RequestStore {
  create(data: RequestJobData): Promise<RequestSnapshot>;
  get(requestId: string): Promise<RequestSnapshot | undefined>;
  /** Marks a request cancelled and removes its calls that have not started. */
  cancel(requestId: string): Promise<RequestSnapshot | undefined>;
}

function statusOf(state: string, job: Job<RequestJobData, MoaResult>, cancelled: boolean): RequestStatus {
  if (state === 'completed') return job.returnvalue?.status === 'cancelled' ? 'cancelled' : 'completed';
  if (state === 'failed') return 'failed';
  if (cancelled) return 'cancelled';
  if (state === 'active' || state === 'waiting-children') return 'running';
  const progress = job.progress as Partial<RequestProgress> | undefined;
  const started = Boolean(progress && typeof progress === 'object' && (progress.layers?.length || progress.currentLayer));
  return started ? 'running' : 'queued';
}

function snapshotOf(job: Job<RequestJobData, MoaResult>, state: string, cancelled: boolean): RequestSnapshot {
  const progress = job.progress && typeof job.progress === 'object' ? (job.progress as RequestProgress) : undefined;
  return {
    data: job.data,
    status: statusOf(state, job, cancelled),
    finishedOn: job.finishedOn,
    progress,
    result: state === 'completed' ? job.returnvalue : undefined,
    failedReason: job.failedReason,
  };
}

/** Creates the store over the shared queues. */
export function createRequestStore(queues: MoaQueues, redis: Redis): RequestStore {
  async function load(requestId: string) {
    if (!REQUEST_ID_PATTERN.test(requestId)) return undefined;
    const job = (await Job.fromId(queues.requests, requestId)) as Job<RequestJobData, MoaResult> | undefined;
    if (!job) return undefined;
    const [state, cancelled] = await Promise.all([
      job.getState(),
      redis.exists(cancelKey(queues.prefix, requestId)),
    ]);
    return { job, state, cancelled: cancelled === 1 };
  }

  return {
    async create(data) {
      await queues.requests.add('moa', data, { jobId: data.requestId });
      return {
        data,
        status: 'queued',
        finishedOn: undefined,
        progress: undefined,
        result: undefined,
        failedReason: undefined,
      };
    },
    async get(requestId) {
      const loaded = await load(requestId);
      return loaded && snapshotOf(loaded.job, loaded.state, loaded.cancelled);
    },
    async cancel(requestId) {
      const loaded = await load(requestId);
      if (!loaded) return undefined;
      const { job, state } = loaded;
      if (state === 'completed' || state === 'failed') return snapshotOf(job, state, loaded.cancelled);
      await redis.set(cancelKey(queues.prefix, requestId), '1', 'EX', CANCEL_MARKER_TTL_SECONDS);
      if (state === 'waiting-children') {
        // Calls not yet started are removed and running ones aborted by their
        // workers; then BullMQ wakes the orchestrator, which sees the marker
        // and ends as cancelled without making another call.
        await job.removeUnprocessedChildren();
        const { preset } = job.data;
        const callIds: string[] = [];
        for (let layer = 1; layer <= layerCount(preset); layer += 1) {
          agentsOfLayer(preset, layer).forEach((_agent, index) => callIds.push(callJobId(requestId, layer, index)));
        }
        await redis.publish(cancelCallsChannel(queues.prefix), JSON.stringify(callIds));
      }
      return snapshotOf(job, state, true);
    },
  };
}
