import { loadRequest, snapshotOf, type MoaQueues } from '@moa-queue/contract';
import { strictRouter } from '../strict-router.js';
import type { Redis } from 'ioredis';
import { ApiError } from '../api-error.js';
import { methodNotAllowed } from '../middleware/error-handler.js';
import { canAccess, listScope, principalOf } from '../principal.js';
import { consoleJob } from './job-timeline.js';
import { listRecentJobs } from './recent-jobs.js';

/** What the console's JSON endpoints read. */
export interface ConsoleApiDependencies {
  queues: MoaQueues;
  redis: Redis;
  /** Whether the console asks for a key (the page then offers to log out). */
  authRequired: boolean;
}

const MAX_LIMIT = 200;
const MAX_OFFSET = 10_000;

/** A whole number in a query parameter, or a 400 naming it. */
function integerParam(value: unknown, name: string, fallback: number, min: number, max: number): number {
  if (value === undefined || value === '') return fallback;
  if (typeof value !== 'string' || !/^\d{1,6}$/.test(value) || Number(value) < min || Number(value) > max) {
    throw new ApiError(
      400,
      `${name} must be a whole number from ${min} to ${max}`,
      'invalid_request_error',
      name,
      'invalid_value',
    );
  }
  return Number(value);
}

/**
 * The console's JSON: `GET /console/api/jobs?limit=&cursor=` (recent
 * requests, newest first), `GET /console/api/jobs/{id}` (the job object plus
 * its timeline) and `GET /console/api/session`. Errors are OpenAI error objects.
 */
export function consoleApi(dependencies: ConsoleApiDependencies) {
  const router = strictRouter();
  const { queues, redis } = dependencies;

  router
    .route('/console/api/session')
    .get((_request, response) => {
      const caller = principalOf(response);
      response.json({ auth_required: dependencies.authRequired, tenant: caller.tenant, admin: caller.admin });
    })
    .all(methodNotAllowed(['GET']));

  router
    .route('/console/api/jobs')
    .get(async (request, response) => {
      const limit = integerParam(request.query.limit, 'limit', 50, 1, MAX_LIMIT);
      const offset = integerParam(request.query.cursor, 'cursor', 0, 0, MAX_OFFSET);
      const tenant = listScope(principalOf(response));
      response.json(
        await listRecentJobs(queues, redis, { limit, offset, ...(tenant === undefined ? {} : { tenant }) }),
      );
    })
    .all(methodNotAllowed(['GET']));

  router
    .route('/console/api/jobs/:id')
    .get(async (request, response) => {
      const loaded = await loadRequest(queues, redis, request.params.id);
      // Another tenant's job answers exactly as an unknown one.
      const snapshot =
        loaded && canAccess(principalOf(response), loaded.job.data.tenant)
          ? await snapshotOf(queues, redis, loaded)
          : undefined;
      if (!snapshot) {
        throw new ApiError(
          404,
          `No job with id ${JSON.stringify(request.params.id)}`,
          'invalid_request_error',
          'id',
          'job_not_found',
        );
      }
      response.json(await consoleJob(queues, redis, snapshot));
    })
    .all(methodNotAllowed(['GET']));

  return router;
}
