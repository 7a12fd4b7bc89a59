import { Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { cancelKey } from './cancel-marker.js';
import { REQUEST_ID_PATTERN } from './job-ids.js';
import type { RequestSnapshot, WebhookDeliveryView } from './job-view.js';
import type { MoaQueues } from './moa-queues.js';
import type { RequestJobData, RequestProgress, RequestResult, RequestStatus } from './payloads.js';

/** Redis list of a request's webhook delivery attempts (JSON entries). */
export function deliveriesKey(prefix: string, requestId: string): string {
  return `${prefix}:moa-webhook-deliveries:${requestId}`;
}

function statusOf(state: string, job: Job<RequestJobData, RequestResult>, cancelled: boolean): RequestStatus {
  if (state === 'completed') return job.returnvalue?.status === 'cancelled' ? 'cancelled' : 'completed';
  if (state === 'failed') return 'failed';
  if (cancelled) return 'cancelled';
  if (state === 'active' || state === 'waiting-children') return 'running';
  const progress = job.progress as Partial<RequestProgress> | undefined;
  const started = Boolean(
    progress && typeof progress === 'object' && (progress.layers?.length || progress.currentLayer),
  );
  return started ? 'running' : 'queued';
}

/** A loaded request: its orchestrator job, BullMQ state and cancel marker. */
export interface LoadedRequest {
  job: Job<RequestJobData, RequestResult>;
  state: string;
  cancelled: boolean;
}

/** Loads a request's orchestrator job and state; undefined for an unknown or malformed id. */
export async function loadRequest(
  queues: MoaQueues,
  redis: Redis,
  requestId: string,
): Promise<LoadedRequest | undefined> {
  if (!REQUEST_ID_PATTERN.test(requestId)) return undefined;
  // State first, then the job: states only move forward, so a job read after
  // 'completed' is seen always carries its result.
  const [state, cancelled] = await Promise.all([
    queues.requests.getJobState(requestId),
    redis.exists(cancelKey(queues.prefix, requestId)),
  ]);
  if (state === 'unknown') return undefined;
  const job = (await Job.fromId(queues.requests, requestId)) as
    Job<RequestJobData, RequestResult> | undefined;
  if (!job) return undefined;
  return { job, state, cancelled: cancelled === 1 };
}

/** The snapshot of a loaded request, with its webhook deliveries when it has a webhook. */
export async function snapshotOf(
  queues: MoaQueues,
  redis: Redis,
  loaded: LoadedRequest,
): Promise<RequestSnapshot> {
  const { job, state, cancelled } = loaded;
  const progress =
    job.progress && typeof job.progress === 'object' ? (job.progress as RequestProgress) : undefined;
  const deliveries = job.data.webhook
    ? (await redis.lrange(deliveriesKey(queues.prefix, job.data.requestId), 0, -1)).map(
        (entry) => JSON.parse(entry) as WebhookDeliveryView,
      )
    : undefined;
  return {
    data: job.data,
    status: statusOf(state, job, cancelled),
    finishedOn: job.finishedOn,
    progress,
    result: state === 'completed' ? job.returnvalue : undefined,
    failedReason: job.failedReason,
    deliveries,
  };
}

/** Reads a request's snapshot, or undefined when there is no such request. */
export async function readRequest(
  queues: MoaQueues,
  redis: Redis,
  requestId: string,
): Promise<RequestSnapshot | undefined> {
  const loaded = await loadRequest(queues, redis, requestId);
  return loaded && snapshotOf(queues, redis, loaded);
}

/** True once a request has ended for good: a final status that BullMQ has recorded as finished. */
export function isFinished(snapshot: RequestSnapshot): boolean {
  return (
    snapshot.finishedOn !== undefined &&
    (snapshot.status === 'completed' || snapshot.status === 'failed' || snapshot.status === 'cancelled')
  );
}
