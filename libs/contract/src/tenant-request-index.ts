import type { ChainableCommander } from 'ioredis';
import { REQUEST_RETENTION } from './retention.js';

/** One tenant's requests by creation time (a sorted set), for the console's job list. */
export const tenantRequestsKey = (prefix: string, tenant: string): string =>
  `${prefix}:moa-tenant-requests:${tenant}`;

/**
 * A tenant's requests that may still be queued or running (a sorted set by
 * creation time), for its `maxActiveJobs` quota. Entries of requests that
 * have ended are pruned when the set is read at its limit.
 */
export const tenantActiveRequestsKey = (prefix: string, tenant: string): string =>
  `${prefix}:moa-tenant-active:${tenant}`;

const RETENTION_MS = ('age' in REQUEST_RETENTION ? REQUEST_RETENTION.age : 7 * 24 * 3600) * 1000;
const MAX_ENTRIES = REQUEST_RETENTION.count ?? 100_000;

/**
 * Adds requests to their tenant's index on a pipeline or transaction the
 * caller runs with the request's creation. Entries older than the request
 * retention are dropped on the way, and the index never holds more than
 * the retention's count, so it stays as bounded as the requests themselves.
 */
export function indexTenantRequests(
  pipeline: ChainableCommander,
  prefix: string,
  tenant: string,
  requests: readonly { requestId: string; createdAt: number }[],
): ChainableCommander {
  if (requests.length === 0) return pipeline;
  const key = tenantRequestsKey(prefix, tenant);
  const members = requests.flatMap(({ requestId, createdAt }) => [createdAt, requestId]);
  const newest = Math.max(...requests.map(({ createdAt }) => createdAt));
  return pipeline
    .zadd(key, ...members)
    .zremrangebyscore(key, '-inf', `(${newest - RETENTION_MS}`)
    .zremrangebyrank(key, 0, -(MAX_ENTRIES + 1))
    .pexpire(key, RETENTION_MS);
}
