import { randomBytes } from 'node:crypto';

/** The queue of batch jobs: validate, finalize, drain (cancel or expiry), expire, force-finalize. */
export const BATCHES_QUEUE = 'moa-batches';

/** Limits of the Batch API (DESIGN §4): 200 MB per file, 50,000 requests per batch. */
export const BATCH_LIMITS = { maxFileBytes: 200 * 1024 * 1024, maxLines: 50_000 } as const;

/** Files are stored as a Redis list of chunks of at most this many bytes. */
export const FILE_CHUNK_BYTES = 256 * 1024;

/**
 * Base BullMQ priority of batch items; item i gets `BATCH_ITEM_PRIORITY + i`.
 * Jobs without a priority are served before any prioritized job, so
 * interactive requests always go first. The LLM calls of an item inherit its
 * priority, so an item's later layers go before the first layer of items
 * after it: items finish in order, one after another, rather than all of
 * them together at the end (which would leave a cancelled or expired batch
 * with almost nothing done, and no progress to show meanwhile).
 */
export const BATCH_ITEM_PRIORITY = 1000;

/** The BullMQ priority of a batch's item `index` (lower runs first; BullMQ allows up to 2^21). */
export function batchItemPriority(index: number): number {
  return BATCH_ITEM_PRIORITY + index;
}

/**
 * Input lines are validated and enqueued in chunks (one `addBulk` and one
 * accounting script each) of at most this many lines...
 */
export const BATCH_VALIDATION_CHUNK_LINES = 500;

/**
 * ...and at most this many bytes of line text: a chunk is sent as soon as
 * its lines reach it. A line may be as long as the JSON body limit (4 MiB by
 * default), so a line count alone would let 500 such lines (2 GB) into one
 * chunk; with both bounds a validation holds at most this plus one line.
 */
export const BATCH_VALIDATION_CHUNK_BYTES = 1024 * 1024;

/** Validations one worker process runs at once; more wait their turn (each holds up to a chunk). */
export const BATCH_VALIDATIONS_PER_PROCESS = 2;

/** Files and finished batches are kept this long, then Redis drops them. */
export const BATCH_RETENTION_SECONDS = 30 * 24 * 3600;

/** The only completion window: 24 hours. */
export const BATCH_COMPLETION_WINDOW_MS = 24 * 3600 * 1000;

/** After a cancel or an expiry, a batch is finalized at the latest this long after its items were drained. */
export const BATCH_FORCE_FINALIZE_MS = 10 * 60 * 1000;

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

function randomSuffix(length = 24): string {
  let suffix = '';
  for (const byte of randomBytes(length)) suffix += ALPHABET[byte % ALPHABET.length];
  return suffix;
}

export const FILE_ID_PATTERN = /^file-[A-Za-z0-9]{1,64}$/;
export const BATCH_ID_PATTERN = /^batch_[A-Za-z0-9]{1,64}$/;

export const newFileId = (): string => `file-${randomSuffix()}`;
export const newBatchId = (): string => `batch_${randomSuffix()}`;
export const newBatchRequestId = (): string => `batch_req_${randomSuffix()}`;

/**
 * The request id of a batch's item, derived from the batch and the item's
 * position: the items of a batch can be enumerated without a list, and an
 * item added twice is one BullMQ job.
 */
export function batchItemRequestId(batchId: string, index: number): string {
  return `job_${batchId.slice('batch_'.length)}x${index}`;
}

/** The batch of an item's request id (the inverse of {@link batchItemRequestId}); undefined for any other id. */
export function batchIdOfItem(requestId: string): string | undefined {
  // The batch's suffix is base62 and may hold an `x`: the index is the digits after the last one.
  const match = /^job_([A-Za-z0-9]+)x(\d+)$/.exec(requestId);
  return match ? `batch_${match[1]}` : undefined;
}

/**
 * Batch items whose request may be removed (a sorted set: request id →
 * when, epoch ms): written with the item's line, in the same script, and
 * emptied by the worker's batch item sweeper once the time has come.
 */
export const batchItemsToForgetKey = (prefix: string): string => `${prefix}:moa-batch-items-forget`;

/** Metadata (a hash) of a stored file. */
export const fileKey = (prefix: string, fileId: string): string => `${prefix}:moa-file:${fileId}`;
/** The content of a stored file: a list of chunks. */
export const fileChunksKey = (prefix: string, fileId: string): string =>
  `${prefix}:moa-file:${fileId}:chunks`;
/** A batch (a hash of its fields and counters). */
export const batchKey = (prefix: string, batchId: string): string => `${prefix}:moa-batch:${batchId}`;
/** Custom ids of the items whose outcome has been recorded (a set): an item is counted once. */
export const batchDoneKey = (prefix: string, batchId: string): string =>
  `${prefix}:moa-batch:${batchId}:done`;
/**
 * Custom ids seen while validating (a hash: custom_id → index of the line
 * that claimed it first), to refuse duplicates without holding them in
 * memory. The index, not mere presence, tells a duplicate: a validation
 * re-run after a crash claims its own lines again and must not take them
 * for duplicates of themselves.
 */
export const batchSeenKey = (prefix: string, batchId: string): string =>
  `${prefix}:moa-batch:${batchId}:seen`;
/** Output lines of finished items (a list), until the output file is made of them. */
export const batchOutputKey = (prefix: string, batchId: string): string =>
  `${prefix}:moa-batch:${batchId}:out`;
/** Error lines (a list), until the error file is made of them. */
export const batchErrorKey = (prefix: string, batchId: string): string =>
  `${prefix}:moa-batch:${batchId}:err`;
/**
 * Batches by creation time (a sorted set), for `GET /v1/batches`: every
 * batch without `tenant` (what admins list), or one tenant's.
 */
export const batchIndexKey = (prefix: string, tenant?: string): string =>
  tenant === undefined ? `${prefix}:moa-batches` : `${prefix}:moa-batches:tenant:${tenant}`;
/**
 * The sizes of one tenant's stored files (a hash: file id → bytes), for its
 * `maxFileBytes` quota. Entries of files that expired are pruned when read.
 */
export const tenantFileBytesKey = (prefix: string, tenant: string): string =>
  `${prefix}:moa-files:bytes:${tenant}`;
/** Files by creation time (a sorted set), for `GET /v1/files`: every file, or one tenant's. */
export const fileIndexKey = (prefix: string, tenant?: string): string =>
  tenant === undefined ? `${prefix}:moa-files` : `${prefix}:moa-files:tenant:${tenant}`;

/** Data of a job on the batches queue. */
export interface BatchJobData {
  batchId: string;
}

/** Names of the jobs on the batches queue. */
export type BatchJobName = 'validate' | 'finalize' | 'force-finalize' | 'drain' | 'expire';
