import {
  BATCH_ID_PATTERN,
  batchIndexKey,
  batchKey,
  batchObject,
  countActiveBatchItems,
  FILE_ID_PATTERN,
  newBatchId,
  queueBatchJob,
  readBatchHash,
  readStoredFile,
  requestBatchCancel,
  TERMINAL_BATCH_STATUSES,
} from '@moa-queue/contract';
import { quotasOf } from '@moa-queue/moa';
import { strictRouter } from '../strict-router.js';
import { z } from 'zod';
import { ApiError } from '../api-error.js';
import { methodNotAllowed } from '../middleware/error-handler.js';
import { canAccess, listScope, principalOf, type Principal } from '../principal.js';
import { quotaExceeded } from '../quota-error.js';
import { metadataSchema } from '../request-schema.js';
import { parseOrThrow } from '../validation.js';
import { pageFromIndex, pageLimitSchema } from '../index-page.js';
import type { BatchRouteDependencies } from './batch-options.js';

/** How long a client refused by `maxActiveBatchItems` is told to wait: batch items end over minutes. */
const ACTIVE_BATCH_ITEMS_RETRY_AFTER_SECONDS = 60;

const createBatchSchema = z.object(
  {
    input_file_id: z.string({ error: 'must be a file id string' }).min(1).max(128),
    endpoint: z.enum(['/v1/chat/completions', '/v1/responses'], {
      error: 'only /v1/chat/completions and /v1/responses are supported',
    }),
    completion_window: z.literal('24h', { error: 'only 24h is supported' }),
    metadata: metadataSchema.nullish(),
  },
  { error: 'request body must be a JSON object' },
);

const listSchema = z.object({
  after: z.string().max(128).optional(),
  limit: pageLimitSchema(100),
});

function batchNotFound(id: string): ApiError {
  return new ApiError(
    404,
    `No batch with id ${JSON.stringify(id)}`,
    'invalid_request_error',
    'id',
    'batch_not_found',
  );
}

/**
 * The OpenAI Batch API: `POST /v1/batches`, `GET /v1/batches`,
 * `GET /v1/batches/{id}`, `POST /v1/batches/{id}/cancel`. Every batch lives
 * in Redis, so any API replica serves any batch.
 */
export function batchesRouter(dependencies: BatchRouteDependencies) {
  const router = strictRouter();
  const { redis, queues } = dependencies;
  const { prefix } = queues;
  // Another tenant's batch answers exactly as an unknown one.
  const load = async (id: string, caller: Principal) => {
    const hash = BATCH_ID_PATTERN.test(id) ? await readBatchHash(redis, prefix, id) : undefined;
    if (!hash || !canAccess(caller, hash.tenant)) throw batchNotFound(id);
    return hash;
  };

  router
    .route('/v1/batches')
    .post(async (request, response) => {
      const caller = principalOf(response);
      const body = parseOrThrow(createBatchSchema, request.body);
      const file = FILE_ID_PATTERN.test(body.input_file_id)
        ? await readStoredFile(redis, prefix, body.input_file_id)
        : undefined;
      if (!file || !canAccess(caller, file.tenant)) {
        throw new ApiError(
          404,
          `No such File object: ${JSON.stringify(body.input_file_id)}`,
          'invalid_request_error',
          'input_file_id',
          'file_not_found',
        );
      }
      if (file.purpose !== 'batch') {
        throw new ApiError(
          400,
          `File ${file.id} has purpose ${JSON.stringify(file.purpose)}, not "batch"`,
          'invalid_request_error',
          'input_file_id',
          'invalid_value',
        );
      }
      const { maxLines } = dependencies.options;
      // A file that cannot run (not UTF-8, too many lines) fails at validation and never holds items.
      const runnable = file.utf8 && file.lines <= maxLines ? file.lines : 0;
      const { maxActiveBatchItems } = quotasOf(dependencies.config, caller.tenant);
      if (runnable > 0) {
        const active = await countActiveBatchItems(redis, prefix, caller.tenant);
        if (active + runnable > maxActiveBatchItems) {
          throw quotaExceeded({
            code: 'quota_active_batch_items',
            message: `Too many active batch items: this key may have ${maxActiveBatchItems} batch items queued or running at once; ${active} are, and this file has ${runnable}. Retry when some have finished`,
            retryAfterSeconds: ACTIVE_BATCH_ITEMS_RETRY_AFTER_SECONDS,
          });
        }
      }
      const batchId = newBatchId();
      const now = Date.now();
      const createdAt = Math.floor(now / 1000);
      const windowMs = dependencies.options.completionWindowMs;
      await redis
        .multi()
        .hset(batchKey(prefix, batchId), {
          id: batchId,
          tenant: caller.tenant,
          status: 'validating',
          endpoint: body.endpoint,
          input_file_id: file.id,
          completion_window: body.completion_window,
          created_at: createdAt,
          expires_at: Math.floor((now + windowMs) / 1000),
          total: 0,
          completed: 0,
          failed: 0,
          cancelled: 0,
          items: 0,
          // The items it may run (its maxActiveBatchItems share until validated), and this API's limits.
          lines: runnable,
          max_lines: maxLines,
          max_line_bytes: dependencies.maxLineBytes,
          ...(body.metadata ? { metadata: JSON.stringify(body.metadata) } : {}),
        })
        .zadd(batchIndexKey(prefix), now, batchId)
        .zadd(batchIndexKey(prefix, caller.tenant), now, batchId)
        .exec();
      await queueBatchJob(queues, 'expire', batchId, { delayMs: windowMs });
      // The file is validated and its items enqueued by a job on the batches queue: the answer is at once.
      await queueBatchJob(queues, 'validate', batchId);
      response.json(batchObject(await load(batchId, caller)));
    })
    .get(async (request, response) => {
      const query = parseOrThrow(listSchema, request.query);
      // An admin lists every batch; anyone else only their own.
      const listIndex = batchIndexKey(prefix, listScope(principalOf(response)));
      // Newest first; entries whose batch has expired from Redis are dropped from the index on the way.
      const { data, hasMore } = await pageFromIndex(redis, listIndex, {
        limit: query.limit ?? 20,
        ...(query.after === undefined ? {} : { after: query.after }),
        load: async (ids) => {
          const pipeline = redis.pipeline();
          for (const id of ids) pipeline.hgetall(batchKey(prefix, id));
          const hashes = (await pipeline.exec()) ?? [];
          return hashes.map(([, hash]) => {
            const fields = hash as Record<string, string> | undefined;
            return fields?.id ? batchObject(fields) : undefined;
          });
        },
      });
      response.json({
        object: 'list',
        data,
        first_id: data[0]?.id ?? null,
        last_id: data.at(-1)?.id ?? null,
        has_more: hasMore,
      });
    })
    .all(methodNotAllowed(['GET', 'POST']));

  router
    .route('/v1/batches/:id')
    .get(async (request, response) => {
      response.json(batchObject(await load(request.params.id, principalOf(response))));
    })
    .all(methodNotAllowed(['GET']));

  router
    .route('/v1/batches/:id/cancel')
    .post(async (request, response) => {
      const id = request.params.id;
      const caller = principalOf(response);
      await load(id, caller);
      const outcome = await requestBatchCancel(redis, prefix, id);
      if (outcome === 'missing') throw batchNotFound(id);
      // While validating, the validation job stops at its next chunk and drains what it enqueued.
      if (outcome === 'drain') await queueBatchJob(queues, 'drain', id);
      const hash = await load(id, caller);
      // Cancelling twice is fine; a batch that has ended (or is ending) otherwise cannot be cancelled.
      const ended = TERMINAL_BATCH_STATUSES.has(hash.status ?? '') || hash.status === 'finalizing';
      if (outcome === 'noop' && ended && hash.status !== 'cancelled') {
        throw new ApiError(
          409,
          `Batch ${id} is ${hash.status} and can no longer be cancelled`,
          'invalid_request_error',
          'id',
          'batch_not_cancellable',
        );
      }
      response.json(batchObject(hash));
    })
    .all(methodNotAllowed(['POST']));

  return router;
}
