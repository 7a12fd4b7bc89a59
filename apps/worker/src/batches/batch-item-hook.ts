import {
  DEFAULT_BATCH_ITEM_GRACE_MS,
  batchErrorLine,
  batchOutputLine,
  jobView,
  newBatchRequestId,
  queueBatchJob,
  recordBatchItem,
  type FileStore,
  type MoaQueues,
  type RequestJobData,
  type RequestProgress,
  type RequestResult,
  type RequestSnapshot,
} from '@moa-queue/contract';
import { answerOf, type ErrorRecord, type MoaResult } from '@moa-queue/moa';
import type { Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';

/** What the batch-item hook needs. */
export interface BatchItemHookDependencies {
  queues: MoaQueues;
  redis: Redis;
  /** Where an item's output or error line waits for the batch's finalization (see `FileStore.spoolLine`). */
  files: FileStore;
  logger: Logger;
  /**
   * How long an item's request stays readable after its line is recorded
   * (`BATCH_ITEM_GRACE_MS`); then the sweeper removes it.
   * @defaultValue DEFAULT_BATCH_ITEM_GRACE_MS (10 minutes)
   */
  batchItemGraceMs?: number;
}

/** How a request ended, as the orchestrator knows it. */
export type RequestEnd =
  | { status: 'completed' | 'cancelled'; result: MoaResult }
  | { status: 'failed'; progress: RequestProgress | undefined; error: ErrorRecord };

/**
 * How a request whose orchestrator job has ended (BullMQ state `completed`
 * or `failed`) ended, read back from the job: for whoever records an end
 * that its own run could not (a job failed by BullMQ without running, the
 * reconciler). Undefined while the job has not ended.
 */
export function requestEndOf(
  job: Pick<Job<RequestJobData, RequestResult>, 'returnvalue' | 'progress' | 'failedReason'>,
  state: string,
): RequestEnd | undefined {
  const progress =
    job.progress && typeof job.progress === 'object' ? (job.progress as RequestProgress) : undefined;
  if (state === 'completed') {
    const stored = job.returnvalue;
    if (!stored || typeof stored !== 'object') return undefined;
    const status = stored.status === 'cancelled' ? 'cancelled' : 'completed';
    const layers = progress?.layers ?? [];
    // The answer is stored once, in the aggregator's layer (a result of an earlier version kept its own).
    const output = status === 'completed' ? (stored.output ?? answerOf(layers)) : null;
    return { status, result: { ...stored, status, layers, output } };
  }
  if (state === 'failed') {
    return {
      status: 'failed',
      progress,
      error: progress?.error ?? {
        message: job.failedReason || 'the request failed',
        type: 'server_error',
        code: null,
      },
    };
  }
  return undefined;
}

/**
 * Called wherever a request ends (completed, cancelled, failed). For a batch
 * item, records its output or error line and counts it, once per item
 * however often the orchestrator re-runs; the item that completes the batch
 * queues its finalization. Does nothing for other requests. `recorded` is
 * false when the item had been recorded already (or is no batch item).
 */
export async function recordBatchItemEnd(
  dependencies: BatchItemHookDependencies,
  data: RequestJobData,
  end: RequestEnd,
): Promise<{ recorded: boolean }> {
  if (!data.batch) return { recorded: false };
  const { id: batchId, customId } = data.batch;
  const snapshot: RequestSnapshot = {
    data,
    status: end.status,
    finishedOn: Date.now(),
    progress:
      end.status === 'failed'
        ? end.progress
          ? { ...end.progress, error: end.error }
          : undefined
        : undefined,
    result: end.status === 'failed' ? undefined : end.result,
    failedReason: end.status === 'failed' ? end.error.message : undefined,
  };
  const view = jobView(snapshot);
  const lineId = newBatchRequestId();
  // The line promises what the record script schedules: the request goes at `forgetAt`, not before.
  const forgetAt = Date.now() + (dependencies.batchItemGraceMs ?? DEFAULT_BATCH_ITEM_GRACE_MS);
  const requestIdExpiresAt = Math.ceil(forgetAt / 1000);
  let line: string;
  if (end.status === 'completed') {
    line = batchOutputLine(lineId, customId, snapshot, requestIdExpiresAt);
  } else {
    const error = view.error ?? { message: 'the request failed', type: 'server_error', code: null };
    const cancelled = end.status === 'cancelled';
    line = batchErrorLine(
      lineId,
      customId,
      {
        code: error.code ?? (cancelled ? 'cancelled' : 'moa_failed'),
        message: error.message,
        type: error.type,
      },
      { statusCode: cancelled ? 409 : 502, requestId: data.requestId, requestIdExpiresAt },
    );
  }
  // The line is durable before the item is recorded: a recorded item always has its line.
  const entry = await dependencies.files.spoolLine(batchId, lineId, line);
  const { recorded, finalize } = await recordBatchItem(
    dependencies.redis,
    dependencies.queues.prefix,
    batchId,
    {
      customId,
      kind: end.status,
      line: entry,
      lineId,
      costUsd: view.cost_usd,
      promptTokens: view.usage.prompt_tokens,
      completionTokens: view.usage.completion_tokens,
      requestId: data.requestId,
      forgetAt: requestIdExpiresAt * 1000,
    },
  );
  // Recorded already (a re-run) or the batch has ended: no list refers to this line.
  if (!recorded) await dependencies.files.discardSpooled(batchId, entry);
  if (finalize) await queueBatchJob(dependencies.queues, 'finalize', batchId);
  dependencies.logger.debug(
    { batchId, customId, status: end.status, recorded, finalize },
    'batch item recorded',
  );
  return { recorded };
}
