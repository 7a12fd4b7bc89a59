import {
  cancelKey,
  jobView,
  ownerTenant,
  snapshotOf,
  tenantRequestsKey,
  type MoaQueues,
  type RequestJobData,
} from '@moa-queue/contract';
import type { MoaResult } from '@moa-queue/moa';
import { Job, type JobState } from 'bullmq';
import type { Redis } from 'ioredis';

/** Every state an orchestrator job can be in. */
const REQUEST_STATES: JobState[] = [
  'active',
  'waiting',
  'waiting-children',
  'prioritized',
  'delayed',
  'completed',
  'failed',
];

/** One row of the console's job list. Times in epoch milliseconds. */
export interface JobSummary {
  id: string;
  status: string;
  preset: string;
  source: string | null;
  /** The tenant that owns the request (the console shows it to admins). */
  owner: string;
  created_at: number;
  finished_at: number | null;
  /** Finished: finish minus creation; still queued or running: now minus creation. */
  duration_ms: number | null;
  cost_usd: number | null;
  total_tokens: number;
}

/** A page of the job list, newest first. */
export interface JobSummaryPage {
  object: 'list';
  data: JobSummary[];
  /** Pass as `cursor` for the next (older) page; null on the last one. */
  next_cursor: string | null;
}

type RequestJob = Job<RequestJobData, MoaResult>;

/**
 * The most recent requests, newest first, with the status, cost and usage
 * the job object reports (the same status logic as `GET /v1/jobs/{id}`):
 * every tenant's for an admin (`tenant` undefined), else one tenant's. The
 * cursor is the offset of the next page.
 */
export async function listRecentJobs(
  queues: MoaQueues,
  redis: Redis,
  page: { limit: number; offset: number; tenant?: string },
  now = Date.now(),
): Promise<JobSummaryPage> {
  if (page.tenant !== undefined) return listTenantJobs(queues, redis, { ...page, tenant: page.tenant }, now);
  return listAllJobs(queues, redis, page, now);
}

/**
 * One tenant's page, from its index (see `indexTenantRequests`): entries
 * whose request has aged out of Redis are skipped.
 */
async function listTenantJobs(
  queues: MoaQueues,
  redis: Redis,
  page: { limit: number; offset: number; tenant: string },
  now: number,
): Promise<JobSummaryPage> {
  const ids = await redis.zrevrange(
    tenantRequestsKey(queues.prefix, page.tenant),
    page.offset,
    page.offset + page.limit,
  );
  const loaded = await Promise.all(
    ids.slice(0, page.limit).map(async (id) => {
      const [job, state] = await Promise.all([
        Job.fromId(queues.requests, id) as Promise<RequestJob | undefined>,
        queues.requests.getJobState(id),
      ]);
      // The index is the tenant's own, but the job's record decides: an index entry is no proof of ownership.
      return job?.data && ownerTenant(job.data.tenant) === page.tenant ? { job, state } : undefined;
    }),
  );
  const rows = loaded.filter(
    (row): row is { job: RequestJob; state: JobState | 'unknown' } => row !== undefined,
  );
  return {
    object: 'list',
    data: await summaries(queues, redis, rows, now),
    next_cursor: ids.length > page.limit ? String(page.offset + page.limit) : null,
  };
}

/** Every tenant's requests: each state is read newest first up to the end of the page, then merged by creation time. */
async function listAllJobs(
  queues: MoaQueues,
  redis: Redis,
  page: { limit: number; offset: number },
  now: number,
): Promise<JobSummaryPage> {
  const end = page.offset + page.limit; // one more than the page, to know whether another follows
  const perState = await Promise.all(
    REQUEST_STATES.map(async (state) => {
      const jobs = (await queues.requests.getJobs([state], 0, end, false)) as (RequestJob | undefined)[];
      return jobs
        .filter((job): job is RequestJob => Boolean(job?.id && job.data))
        .map((job) => ({ job, state }));
    }),
  );
  const seen = new Set<string>();
  const merged = perState
    .flat()
    .filter(({ job }) => (seen.has(job.id!) ? false : (seen.add(job.id!), true)))
    .sort(
      (left, right) => createdAt(right.job) - createdAt(left.job) || (right.job.id! < left.job.id! ? -1 : 1),
    );
  const rows = merged.slice(page.offset, page.offset + page.limit);
  return {
    object: 'list',
    data: await summaries(queues, redis, rows, now),
    next_cursor: merged.length > page.offset + page.limit ? String(page.offset + page.limit) : null,
  };
}

/** The list rows of loaded requests, in the order given. */
async function summaries(
  queues: MoaQueues,
  redis: Redis,
  rows: { job: RequestJob; state: string }[],
  now: number,
): Promise<JobSummary[]> {
  const cancelled = await cancelMarkers(
    queues,
    redis,
    rows.map(({ job }) => job.id!),
  );
  return Promise.all(
    rows.map(async ({ job, state }, index) => {
      const snapshot = await snapshotOf(queues, redis, { job, state, cancelled: cancelled[index] === true });
      const view = jobView(snapshot);
      const finishedAt = snapshot.finishedOn ?? null;
      const created = createdAt(job);
      const unfinished = snapshot.status === 'queued' || snapshot.status === 'running';
      return {
        id: view.id,
        status: view.status,
        preset: view.preset,
        source: job.data.source ?? null,
        owner: ownerTenant(job.data.tenant),
        created_at: created,
        finished_at: finishedAt,
        duration_ms:
          finishedAt !== null ? finishedAt - created : unfinished ? Math.max(0, now - created) : null,
        cost_usd: view.cost_usd,
        total_tokens: view.usage.total_tokens,
      } satisfies JobSummary;
    }),
  );
}

function createdAt(job: RequestJob): number {
  return typeof job.data.createdAt === 'number' ? job.data.createdAt : job.timestamp;
}

/** Whether each request carries a cancel marker, in one round trip. */
async function cancelMarkers(queues: MoaQueues, redis: Redis, ids: string[]): Promise<boolean[]> {
  if (ids.length === 0) return [];
  const pipeline = redis.pipeline();
  for (const id of ids) pipeline.exists(cancelKey(queues.prefix, id));
  const replies = (await pipeline.exec()) ?? [];
  return ids.map((_id, index) => replies[index]?.[1] === 1);
}
