import {
  batchDoneRequestsKey,
  batchIdOfItem,
  batchItemsToForgetKey,
  batchKey,
  cancelKey,
  DEFAULT_BATCH_ITEM_GRACE_MS,
  deadlineKey,
  eventsKey,
  isInfrastructureError,
  requestJobKey,
  tenantRequestsKey,
  TERMINAL_BATCH_STATUSES,
  ownerTenant,
  type MoaQueues,
} from '@moa-queue/contract';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { z } from 'zod';

/** What the sweeper needs. */
export interface BatchItemSweeperDependencies {
  queues: MoaQueues;
  redis: Redis;
  logger: Logger;
  /** How long an item that cannot go yet is put off. @defaultValue DEFAULT_BATCH_ITEM_GRACE_MS */
  batchItemGraceMs?: number;
}

/** What one sweep did. */
export interface SweepReport {
  /** Items whose request and keys were removed. */
  removed: number;
  /** Items put off: their request had not ended, or had not been recorded in a running batch. */
  deferred: number;
}

/** Items looked at per round trip. */
const SWEEP_CHUNK = 200;

/** At most this many items per sweep, so one pass stays short; the rest go at the next. */
const SWEEP_LIMIT = 20_000;

/**
 * Where a batch item's request job stands, as the sweeper reads it from the
 * job's hash: `gone` (removed already, or never made, as for a line that
 * failed validation or an item a drain removed), `ended` (BullMQ set its
 * `finishedOn`: completed or failed for good; a retry clears it) or
 * `running` (anything else: waiting, active, delayed for a retry).
 */
export type ItemJobState = 'gone' | 'ended' | 'running';

/**
 * Whether a due batch item may be removed now. Its request job must be gone
 * or have ended. An ended job whose batch still runs must also have been
 * recorded: the reconciler records an item whose worker died before
 * recording it by reading its job.
 */
export function mayForget(item: { state: ItemJobState; recorded: boolean; batchRunning: boolean }): boolean {
  if (item.state === 'gone') return true;
  if (item.state !== 'ended') return false;
  return item.recorded || !item.batchRunning;
}

/** What the sweeper reads of an item's request data: how many layers it has, and whether they had deadlines. */
const sweptRequestSchema = z.object({
  preset: z.object({ layers: z.array(z.unknown()), layerTimeoutMs: z.number() }),
});

/**
 * Removes what is left of the batch items whose time has come (see
 * `batchItemsToForgetKey`): the request job with its call jobs (BullMQ's
 * `removeChildren`: the finished and the failed ones), its deadline jobs,
 * its event stream, cancel and deadline markers, and its entry in the
 * tenant's request index, so the console's list holds no ids of requests
 * that are gone. An item is taken off the set only once all that is done,
 * so a sweep that dies midway is simply done again by the next one.
 */
export function createBatchItemSweeper(dependencies: BatchItemSweeperDependencies) {
  const { queues, redis, logger } = dependencies;
  const { prefix } = queues;
  const forgetKey = batchItemsToForgetKey(prefix);
  const graceMs = dependencies.batchItemGraceMs ?? DEFAULT_BATCH_ITEM_GRACE_MS;

  /** Per sweep: each batch's tenant and whether it still runs (read once). */
  async function batchOf(
    cache: Map<string, { tenant: string; running: boolean }>,
    batchId: string,
  ): Promise<{ tenant: string; running: boolean }> {
    const known = cache.get(batchId);
    if (known) return known;
    const [tenant, status] = await redis.hmget(batchKey(prefix, batchId), 'tenant', 'status');
    const batch = {
      tenant: ownerTenant(tenant ?? undefined),
      running: typeof status === 'string' && !TERMINAL_BATCH_STATUSES.has(status),
    };
    cache.set(batchId, batch);
    return batch;
  }

  /** Removes one item; false when it must wait. */
  async function forget(
    requestId: string,
    cache: Map<string, { tenant: string; running: boolean }>,
  ): Promise<boolean> {
    const batchId = batchIdOfItem(requestId);
    if (!batchId) return true;
    // Three fields of the job's hash, not the job: its progress holds every answer, and a
    // sweep reads thousands of items (BullMQ's getJobState would be a script per item too).
    const [[timestamp, finishedOn, rawData], recorded, batch] = await Promise.all([
      redis.hmget(requestJobKey(prefix, requestId), 'timestamp', 'finishedOn', 'data'),
      redis.sismember(batchDoneRequestsKey(prefix, batchId), requestId),
      batchOf(cache, batchId),
    ]);
    const state: ItemJobState = timestamp === null ? 'gone' : finishedOn === null ? 'running' : 'ended';
    if (!mayForget({ state, recorded: recorded === 1, batchRunning: batch.running })) return false;
    const parsed = sweptRequestSchema.safeParse(parseJsonOrUndefined(rawData));
    const layers = parsed.success ? parsed.data.preset.layers.length + 1 : 0;
    if (state !== 'gone') {
      // 0: locked (a worker holds it after all): try again later.
      if ((await queues.requests.remove(requestId, { removeChildren: true })) !== 1) return false;
    }
    const pipeline = redis.pipeline();
    pipeline.del(
      eventsKey(prefix, requestId),
      cancelKey(prefix, requestId),
      ...Array.from({ length: layers }, (_, index) => deadlineKey(prefix, requestId, index + 1)),
    );
    pipeline.zrem(tenantRequestsKey(prefix, batch.tenant), requestId);
    await pipeline.exec();
    if (parsed.success && parsed.data.preset.layerTimeoutMs > 0) {
      await Promise.all(
        Array.from({ length: layers }, (_, index) =>
          queues.deadlines.remove(`${requestId}-L${index + 1}-deadline`),
        ),
      );
    }
    return true;
  }

  return async function sweep(now = Date.now()): Promise<SweepReport> {
    const report: SweepReport = { removed: 0, deferred: 0 };
    const cache = new Map<string, { tenant: string; running: boolean }>();
    while (report.removed + report.deferred < SWEEP_LIMIT) {
      const ids = await redis.zrangebyscore(forgetKey, '-inf', now, 'LIMIT', 0, SWEEP_CHUNK);
      if (ids.length === 0) break;
      const outcomes = await Promise.all(
        ids.map((id) =>
          forget(id, cache).catch((error: unknown) => {
            // Redis trouble ends the sweep (the next pass retries); anything else puts this item off.
            if (isInfrastructureError(error)) throw error;
            logger.warn({ requestId: id, error: String(error) }, 'cannot remove a batch item: put off');
            return false;
          }),
        ),
      );
      const removed = ids.filter((_, index) => outcomes[index]);
      const deferred = ids.filter((_, index) => !outcomes[index]);
      const pipeline = redis.pipeline();
      if (removed.length > 0) pipeline.zrem(forgetKey, ...removed);
      // GT: an item recorded meanwhile keeps its own (later) time, the one its line promises.
      // Past `now` even with no grace, so this sweep does not take them again.
      if (deferred.length > 0) {
        pipeline.zadd(forgetKey, 'GT', ...deferred.flatMap((id) => [now + Math.max(graceMs, 1), id]));
      }
      await pipeline.exec();
      report.removed += removed.length;
      report.deferred += deferred.length;
    }
    if (report.removed > 0 || report.deferred > 0) logger.debug(report, 'batch items swept');
    return report;
  };
}

function parseJsonOrUndefined(raw: string | null | undefined): unknown {
  if (typeof raw !== 'string') return undefined;
  try {
    return JSON.parse(raw) as unknown;
  } catch {
    return undefined;
  }
}
