import {
  BATCH_COMPLETION_WINDOW_MS,
  batchDoneRequestsKey,
  batchIndexKey,
  batchItemRequestId,
  batchKey,
  queueBatchJob,
  requestJobDataSchema,
  type FileStore,
  type MoaQueues,
  type RequestJobData,
  type RequestResult,
} from '@moa-queue/contract';
import { Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { recordBatchItemEnd, requestEndOf } from './batch-item-hook.js';

/** The queue of the reconciler's repeatable job (its own, so nothing else waits behind a long pass). */
export const RECONCILE_QUEUE = 'moa-reconcile';

/** Items looked at per round trip. */
const SCAN_CHUNK = 500;

/** Batches still running; `validating` ones belong to their validation job. */
const RUNNING = new Set(['in_progress', 'cancelling', 'finalizing']);

/** The id suffix of a finalization the reconciler queues again. */
const FINALIZE_AGAIN = '-again';

/** States of a finalize job that will run (again). */
const FINALIZE_PENDING = new Set(['waiting', 'prioritized', 'delayed', 'active', 'waiting-children']);

/** What the reconciler needs. */
export interface BatchReconcilerDependencies {
  queues: MoaQueues;
  redis: Redis;
  /** Where the lines of items it records go (see batch-item-hook.ts). */
  files: FileStore;
  logger: Logger;
  /** See `BatchItemHookDependencies`. @defaultValue DEFAULT_BATCH_ITEM_GRACE_MS (10 minutes) */
  batchItemGraceMs?: number;
}

/** What one pass did. */
export interface ReconcileReport {
  batches: number;
  scanned: number;
  recorded: number;
  finalizations: number;
}

/** The batches the reconciler has seen, with their count of ended items at its last pass (a hash). */
export const reconcileStateKey = (prefix: string): string => `${prefix}:moa-batch-reconcile`;

/**
 * Derives again what the worker must have written when a batch item ended,
 * so that a batch never stays `in_progress` with all its items ended. The
 * orchestrator writes an item's line and counters before its job ends (and
 * is retried until they land), and a job that BullMQ failed without running
 * it is recorded by the worker that saw it fail; this pass catches whatever
 * fell through both (that worker died meanwhile, a bug).
 *
 * A pass looks at the batches created within the completion window (older
 * ones are ended by their expiry): a running batch whose finalization is due
 * but not queued gets it queued again; a running batch whose count of ended
 * items did not move since the previous pass has its items compared with
 * BullMQ (an item job that has ended but whose request id is not in the
 * batch's recorded set is recorded now, once: recording is idempotent).
 * Batches that move are left alone, so a pass costs a few commands per
 * batch while everything works.
 */
export function createBatchReconciler(dependencies: BatchReconcilerDependencies) {
  const { queues, redis, logger } = dependencies;
  const { prefix } = queues;

  async function ensureFinalization(batchId: string): Promise<boolean> {
    const again = `${batchId}-finalize${FINALIZE_AGAIN}`;
    const [first, repeat] = await Promise.all([
      queues.batches.getJobState(`${batchId}-finalize`),
      queues.batches.getJobState(again),
    ]);
    if (FINALIZE_PENDING.has(first) || FINALIZE_PENDING.has(repeat)) return false;
    // Read after the jobs' states: a finalization that has just ended the batch is not redone.
    if (!RUNNING.has((await redis.hget(batchKey(prefix, batchId), 'status')) ?? '')) return false;
    // The finalize job is gone or gave up: another one, under the one id kept for that.
    if (repeat !== 'unknown') await queues.batches.remove(again);
    await queueBatchJob(queues, 'finalize', batchId, { idSuffix: FINALIZE_AGAIN });
    logger.warn({ batchId, finalizeJob: first }, 'batch finalization was not queued: queued it again');
    return true;
  }

  /** Records the items of a batch that ended without being recorded; returns how many. */
  async function recordMissing(batchId: string, items: number): Promise<number> {
    let recorded = 0;
    for (let start = 0; start < items; start += SCAN_CHUNK) {
      const ids = Array.from({ length: Math.min(SCAN_CHUNK, items - start) }, (_, offset) =>
        batchItemRequestId(batchId, start + offset),
      );
      const pipeline = redis.pipeline();
      for (const id of ids) pipeline.hget(queues.requests.toKey(id), 'finishedOn');
      pipeline.smismember(batchDoneRequestsKey(prefix, batchId), ...ids);
      const replies = (await pipeline.exec()) ?? [];
      for (const [error] of replies) if (error) throw error;
      const marked = replies.at(-1)?.[1] as number[];
      const unrecorded = ids.filter((_, index) => replies[index]?.[1] !== null && marked[index] !== 1);
      for (const id of unrecorded) {
        const job = (await Job.fromId(queues.requests, id)) as Job<RequestJobData, RequestResult> | undefined;
        const state = job ? await job.getState() : 'unknown';
        const parsed = requestJobDataSchema.safeParse(job?.data);
        // Only an item whose data is ours and names this batch is recorded.
        if (!job || !parsed.success || parsed.data.batch?.id !== batchId || parsed.data.requestId !== id)
          continue;
        const end = requestEndOf(job, state);
        if (!end) continue;
        if (!(await recordBatchItemEnd(dependencies, parsed.data, end)).recorded) continue;
        recorded += 1;
        logger.warn(
          { batchId, requestId: id, customId: parsed.data.batch.customId, status: end.status },
          'batch item had ended without being recorded: recorded it',
        );
      }
    }
    return recorded;
  }

  return async function reconcile(now = Date.now()): Promise<ReconcileReport> {
    const report: ReconcileReport = { batches: 0, scanned: 0, recorded: 0, finalizations: 0 };
    const since = now - BATCH_COMPLETION_WINDOW_MS - 3600_000;
    const batchIds = await redis.zrangebyscore(batchIndexKey(prefix), since, '+inf');
    const stateKey = reconcileStateKey(prefix);
    const seen = batchIds.length > 0 ? await redis.hmget(stateKey, ...batchIds) : [];
    const pipeline = redis.pipeline();
    for (const batchId of batchIds) {
      pipeline.hmget(
        batchKey(prefix, batchId),
        'status',
        'validated',
        'finalize',
        'items',
        'completed',
        'failed',
        'cancelled',
      );
    }
    const hashes = (await pipeline.exec()) ?? [];
    const forget: string[] = [];
    for (const [index, batchId] of batchIds.entries()) {
      const [error, fields] = hashes[index] ?? [];
      if (error) throw error;
      const [status, validated, finalize, items, completed, failed, cancelled] = fields as (string | null)[];
      if (!status || !RUNNING.has(status)) {
        if (seen[index] !== null && seen[index] !== undefined) forget.push(batchId);
        continue;
      }
      report.batches += 1;
      if (validated !== '1') continue;
      if (finalize === '1') {
        if (await ensureFinalization(batchId)) report.finalizations += 1;
        continue;
      }
      const ended = String(Number(completed ?? 0) + Number(failed ?? 0) + Number(cancelled ?? 0));
      if (seen[index] !== ended) {
        // Moving (or new): look again next pass.
        await redis.hset(stateKey, batchId, ended);
        continue;
      }
      report.scanned += 1;
      report.recorded += await recordMissing(batchId, Number(items ?? 0));
    }
    // Batches no longer running, or out of the window, are no longer followed.
    const window = new Set(batchIds);
    for (const batchId of await redis.hkeys(stateKey)) if (!window.has(batchId)) forget.push(batchId);
    if (forget.length > 0) await redis.hdel(stateKey, ...forget);
    if (report.recorded > 0 || report.finalizations > 0) logger.info(report, 'batch reconciliation');
    return report;
  };
}
