import {
  BATCH_FORCE_FINALIZE_MS,
  BATCH_VALIDATIONS_PER_PROCESS,
  batchErrorKey,
  batchErrorLine,
  batchItemRequestId,
  batchItemsToForgetKey,
  batchDoneRequestsKey,
  DEFAULT_BATCH_ITEM_GRACE_MS,
  batchKey,
  batchJobDataSchema,
  batchOutputKey,
  beginBatchExpiry,
  markCancelled,
  publishCallCancels,
  requestCallIds,
  completeBatch,
  failBatch,
  isInfrastructureError,
  listToFile,
  newBatchRequestId,
  newFileId,
  queueBatchJob,
  ownerTenant,
  readBatchHash,
  recordBatchItem,
  requestJobDataSchema,
  saveStoredFile,
  settleBatchCounts,
  TERMINAL_BATCH_STATUSES,
  type BatchJobData,
  type FileStore,
  type MoaQueues,
  type RequestJobData,
} from '@moa-queue/contract';
import { type MoaConfig } from '@moa-queue/moa';
import { Job, UnrecoverableError } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { parseJobData } from '../parse-job-data.js';
import { validateBatch } from './batch-validation.js';

/** What the batches queue's processor needs. */
export interface BatchProcessorDependencies {
  queues: MoaQueues;
  redis: Redis;
  /** Where input files are read and output and error files written. */
  files: FileStore;
  logger: Logger;
  /** Presets, which batch input lines name. */
  config: MoaConfig;
  /** See `BatchItemHookDependencies`. @defaultValue DEFAULT_BATCH_ITEM_GRACE_MS (10 minutes) */
  batchItemGraceMs?: number;
}

/** The states of a `validate` job that will never run again. */
const VALIDATION_OVER = new Set(['completed', 'failed', 'unknown']);

/** A tiny counting semaphore: at most `slots` holders at once, the others wait in order. */
function semaphore(slots: number) {
  let free = slots;
  const waiting: (() => void)[] = [];
  return async function withSlot<T>(work: () => Promise<T>): Promise<T> {
    if (free > 0) free -= 1;
    else await new Promise<void>((resolve) => waiting.push(resolve));
    try {
      return await work();
    } finally {
      const next = waiting.shift();
      if (next) next();
      else free += 1;
    }
  };
}

/** Items handled at once while draining. */
const DRAIN_CHUNK = 200;

/** A batch item's data if it has the shape our API writes (its preset bounds the calls to stop), else undefined. */
function itemData(job: Job<RequestJobData> | undefined): RequestJobData | undefined {
  const parsed = requestJobDataSchema.safeParse(job?.data);
  return parsed.success ? parsed.data : undefined;
}

/**
 * Processes the batches queue: `validate` (check the input file and enqueue
 * its items), `finalize` (every item accounted for: turn the output and
 * error lists into files in the file store), `drain` (a cancel or an expiry: remove the items
 * not started, stop the running ones), `expire` (the completion window has
 * passed) and `force-finalize` (after a drain, whatever is still missing).
 */
export function createBatchProcessor(dependencies: BatchProcessorDependencies) {
  const { queues, redis, files: fileStore, logger } = dependencies;
  const { prefix } = queues;
  // Each validation holds up to a chunk of lines; a worker process runs only a few at once.
  const validationSlot = semaphore(BATCH_VALIDATIONS_PER_PROCESS);

  /**
   * Before a forced finalization: every item whose request exists but was
   * never recorded (it is still running, long after its cancel) is recorded
   * as not run, under its own `custom_id`; whatever is still missing then
   * is settled by `settleBatchCounts`.
   */
  async function recordUnreported(batchId: string, items: number): Promise<number> {
    const forgetAt = Date.now() + (dependencies.batchItemGraceMs ?? DEFAULT_BATCH_ITEM_GRACE_MS);
    let recorded = 0;
    for (let start = 0; start < items; start += DRAIN_CHUNK) {
      const ids = Array.from({ length: Math.min(DRAIN_CHUNK, items - start) }, (_, offset) =>
        batchItemRequestId(batchId, start + offset),
      );
      const marked = await redis.smismember(batchDoneRequestsKey(prefix, batchId), ...ids);
      for (const [index, id] of ids.entries()) {
        if (marked[index] === 1) continue;
        const job = (await Job.fromId(queues.requests, id)) as Job<RequestJobData> | undefined;
        const data = itemData(job);
        if (data?.batch?.id !== batchId || data.requestId !== id) continue;
        const lineId = newBatchRequestId();
        const outcome = await recordBatchItem(redis, prefix, batchId, {
          customId: data.batch.customId,
          kind: 'cancelled',
          line: batchErrorLine(lineId, data.batch.customId, {
            code: 'cancelled',
            message: 'the request did not end before the batch was finalized',
          }),
          lineId,
          costUsd: null,
          promptTokens: 0,
          completionTokens: 0,
          requestId: id,
          forgetAt,
        });
        if (outcome.recorded) recorded += 1;
      }
    }
    return recorded;
  }

  async function finalize(batchId: string, force: boolean): Promise<void> {
    const hash = await readBatchHash(redis, prefix, batchId);
    if (!hash || TERMINAL_BATCH_STATUSES.has(hash.status ?? '')) {
      // Ended (a finalization that died after completing the batch, or a failure): its spooled lines are of no more use.
      await fileStore.dropSpool(batchId);
      return;
    }
    if (!force && hash.finalize !== '1') return;
    if (force && hash.finalize !== '1') {
      const unreported = await recordUnreported(batchId, Number(hash.items ?? 0));
      const missing = await settleBatchCounts(redis, prefix, batchId);
      if (unreported > 0 || missing > 0) {
        logger.warn({ batchId, unreported, missing }, 'batch items had not reported: counted as not run');
      }
    }
    // File ids are chosen once, so a retried finalization rewrites the same files.
    const key = batchKey(prefix, batchId);
    await redis.hsetnx(key, 'output_file', newFileId());
    await redis.hsetnx(key, 'error_file', newFileId());
    const [outputFile, errorFile] = (await redis.hmget(key, 'output_file', 'error_file')) as [string, string];
    const files = { outputFileId: '', errorFileId: '' };
    for (const [list, fileId, kind] of [
      [batchOutputKey(prefix, batchId), outputFile, 'output'],
      [batchErrorKey(prefix, batchId), errorFile, 'error'],
    ] as const) {
      const made = await listToFile(redis, fileStore, list, batchId, fileId);
      if (!made) continue;
      const { bytes, lines } = made;
      await saveStoredFile(redis, prefix, {
        id: fileId,
        // The batch's owner owns its output and error files.
        tenant: ownerTenant(hash.tenant),
        bytes,
        createdAt: Math.floor(Date.now() / 1000),
        filename: `${batchId}_${kind}.jsonl`,
        purpose: 'batch_output',
        lines,
        utf8: true,
      });
      if (kind === 'output') files.outputFileId = fileId;
      else files.errorFileId = fileId;
    }
    const done = await completeBatch(redis, prefix, batchId, files, force);
    // The files are committed and the lists that referred to the spooled lines are gone.
    await fileStore.dropSpool(batchId);
    logger.info({ batchId, force, done, ...files }, 'batch finalized');
  }

  /** Cancels every item that has not ended: the unstarted ones are removed and counted, the running ones stopped. */
  async function drain(batchId: string): Promise<void> {
    const hash = await readBatchHash(redis, prefix, batchId);
    if (!hash) return;
    const items = Number(hash.items ?? 0);
    let removed = 0;
    for (let start = 0; start < items; start += DRAIN_CHUNK) {
      const ids = Array.from({ length: Math.min(DRAIN_CHUNK, items - start) }, (_, offset) =>
        batchItemRequestId(batchId, start + offset),
      );
      // The marker goes first: an item seen as waiting after it is set can only start as cancelled.
      // Every item is also handed to the sweeper, which removes its marker and whatever is left of
      // its request once it has ended and been recorded (an item still running then is put off).
      const forgetAt = Date.now() + (dependencies.batchItemGraceMs ?? DEFAULT_BATCH_ITEM_GRACE_MS);
      const markers = redis.pipeline();
      for (const id of ids) markCancelled(markers, prefix, id);
      markers.zadd(batchItemsToForgetKey(prefix), 'GT', ...ids.flatMap((id) => [forgetAt, id]));
      await markers.exec();
      const callIds: string[] = [];
      await Promise.all(
        ids.map(async (id) => {
          const state = await queues.requests.getJobState(id);
          if (state === 'waiting' || state === 'prioritized' || state === 'delayed') {
            const job = (await Job.fromId(queues.requests, id)) as Job<RequestJobData> | undefined;
            // An item whose data is not ours is left to the orchestrator, which fails it.
            const customId = itemData(job)?.batch?.customId;
            if (customId === undefined || (await queues.requests.remove(id)) !== 1) return;
            removed += 1;
            const lineId = newBatchRequestId();
            const { finalize } = await recordBatchItem(redis, prefix, batchId, {
              customId,
              requestId: id,
              kind: 'cancelled',
              line: batchErrorLine(lineId, customId, {
                code: 'cancelled',
                message: 'the request was cancelled',
              }),
              lineId,
              costUsd: null,
              promptTokens: 0,
              completionTokens: 0,
            });
            if (finalize) await queueBatchJob(queues, 'finalize', batchId);
          } else if (state === 'active' || state === 'waiting-children') {
            const job = (await Job.fromId(queues.requests, id)) as Job<RequestJobData> | undefined;
            const data = itemData(job);
            if (!job || !data) return;
            if (state === 'waiting-children') await job.removeUnprocessedChildren();
            callIds.push(...requestCallIds(id, data.preset));
          }
        }),
      );
      await publishCallCancels(redis, prefix, callIds, 'cancelled');
    }
    logger.info({ batchId, items, removed }, 'batch drained');
    // Running items end as cancelled within moments; whatever never reports is given up on later.
    await queueBatchJob(queues, 'force-finalize', batchId, { delayMs: BATCH_FORCE_FINALIZE_MS });
  }

  /** Fails a batch whose validation can never finish, and stops what it had enqueued. */
  async function failValidation(batchId: string, reason: string): Promise<void> {
    logger.warn({ batchId, reason }, 'batch validation could not finish: failing the batch');
    const failed = await failBatch(redis, prefix, batchId, [
      {
        code: 'validation_failed',
        message: `The input file could not be validated (${reason}); create the batch again`,
        param: null,
        line: null,
      },
    ]);
    if (!failed) return;
    // A failed batch has no files: the lines of the items that ran are dropped.
    await fileStore.dropSpool(batchId);
    await drain(batchId);
  }

  async function expire(batchId: string): Promise<void> {
    const hash = await readBatchHash(redis, prefix, batchId);
    if (!hash) return;
    if (hash.validated !== '1' && !TERMINAL_BATCH_STATUSES.has(hash.status ?? '')) {
      // Still validating at the end of the window: if the validation job is gone for good
      // (it stalled more often than allowed), nobody else will ever end the batch.
      const state = await queues.batches.getJobState(`${batchId}-validate`);
      const again = await readBatchHash(redis, prefix, batchId);
      if (VALIDATION_OVER.has(state) && again && again.validated !== '1') {
        await failValidation(batchId, `its validation job is ${state}`);
        return;
      }
    }
    const next = await beginBatchExpiry(redis, prefix, batchId);
    logger.info({ batchId, next }, 'batch completion window passed');
    if (next === 'drain') await drain(batchId);
    if (next === 'finalize') await queueBatchJob(queues, 'finalize', batchId);
  }

  async function validate(job: Job<BatchJobData, void>, batchId: string): Promise<void> {
    try {
      await validationSlot(() => validateBatch(dependencies, batchId));
    } catch (error) {
      // The last attempt: the batch fails rather than staying `validating` forever. Redis
      // trouble costs no attempt (infra-retry.ts waits it out); should the job still fail
      // for good, its expiry fails the batch.
      const attempts = job.opts.attempts ?? 1;
      const last = error instanceof UnrecoverableError || job.attemptsMade + 1 >= attempts;
      if (last && !isInfrastructureError(error)) {
        await failValidation(batchId, error instanceof Error ? error.message : String(error)).catch(
          (failure: unknown) => logger.error({ batchId, error: String(failure) }, 'cannot fail batch'),
        );
      }
      throw error;
    }
  }

  return async function processBatchJob(job: Job<BatchJobData, void>): Promise<void> {
    // Nothing of the job is used before its data is validated: anything that reaches Redis can add a job.
    const { batchId } = parseJobData(batchJobDataSchema, job.data);
    switch (job.name) {
      case 'validate':
        return validate(job, batchId);
      case 'finalize':
        return finalize(batchId, false);
      case 'force-finalize':
        return finalize(batchId, true);
      case 'drain':
        return drain(batchId);
      case 'expire':
        return expire(batchId);
      default:
        logger.warn({ name: job.name, batchId }, 'unknown batch job');
    }
  };
}
