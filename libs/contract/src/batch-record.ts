import type { Redis } from 'ioredis';
import { batchIndexKey, batchKey } from './batch-keys.js';

/** Statuses of a batch, as OpenAI's. */
export type BatchStatus =
  | 'validating'
  | 'failed'
  | 'in_progress'
  | 'finalizing'
  | 'completed'
  | 'expired'
  | 'cancelling'
  | 'cancelled';

/** Statuses a batch never leaves. */
export const TERMINAL_BATCH_STATUSES: ReadonlySet<string> = new Set([
  'completed',
  'failed',
  'expired',
  'cancelled',
]);

/** One entry of a failed batch's `errors`. */
export interface BatchErrorEntry {
  code: string;
  message: string;
  param: string | null;
  line: number | null;
}

/** The OpenAI batch object, plus the `moa` extension (cost so far, items cancelled). */
export interface BatchObject {
  id: string;
  object: 'batch';
  endpoint: string;
  errors: { object: 'list'; data: BatchErrorEntry[] } | null;
  input_file_id: string;
  completion_window: string;
  status: BatchStatus;
  output_file_id: string | null;
  error_file_id: string | null;
  created_at: number;
  in_progress_at: number | null;
  expires_at: number | null;
  finalizing_at: number | null;
  completed_at: number | null;
  failed_at: number | null;
  expired_at: number | null;
  cancelling_at: number | null;
  cancelled_at: number | null;
  request_counts: { total: number; completed: number; failed: number };
  metadata: Record<string, string> | null;
  usage: {
    input_tokens: number;
    input_tokens_details: { cached_tokens: number };
    output_tokens: number;
    output_tokens_details: { reasoning_tokens: number };
    total_tokens: number;
  };
  moa: {
    /** USD spent on the items finished so far (calls to models without a price count 0). */
    cost_usd: number;
    /** Items not run because the batch was cancelled or expired (in the error file, not in `failed`). */
    cancelled: number;
  };
}

const orNull = (value: string | undefined): number | null => (value ? Number(value) : null);
const count = (value: string | undefined): number => Number(value ?? 0) || 0;

/** A batch's `request_counts`, and how many of its requests were not run (`moa.cancelled`). */
export interface BatchRequestCounts {
  total: number;
  completed: number;
  failed: number;
  cancelled: number;
}

/**
 * The one rule for the counts a batch shows, on every path it can take:
 *
 * - `failed` (the file could not be used, or its validation could not
 *   finish): all 0, as OpenAI's, whatever was counted before it failed.
 *   Nothing of the batch is delivered (no output or error file; `errors`
 *   says why), so no count would match a line.
 * - Before its validation has read the whole file (`validating`, or
 *   `cancelling` from there): all 0, as OpenAI's; items enqueued meanwhile
 *   may already be running and are counted once `total` is known.
 * - Otherwise the counters: `total` items (every non-blank line), each
 *   counted once as `completed` (a line in the output file), `failed` (a
 *   line in the error file: a bad line, or a request that ran and failed)
 *   or `cancelled` (a `batch_cancelled`/`batch_expired` line in the error
 *   file). Once the batch has ended, `completed + failed + cancelled =
 *   total`, and the error file holds `failed + cancelled` lines:
 *   finalization accounts for any item that never reported (see
 *   `settleBatchCounts`). `cancelled` is not in `failed`, as OpenAI counts
 *   the requests of a cancelled or expired batch that did not run.
 */
export function requestCountsOf(hash: Record<string, string>): BatchRequestCounts {
  if (hash.status === 'failed' || hash.validated !== '1') {
    return { total: 0, completed: 0, failed: 0, cancelled: 0 };
  }
  return {
    total: count(hash.total),
    completed: count(hash.completed),
    failed: count(hash.failed),
    cancelled: count(hash.cancelled),
  };
}

/** The batch object of a batch's hash. */
export function batchObject(hash: Record<string, string>): BatchObject {
  const { cancelled, ...requestCounts } = requestCountsOf(hash);
  const inputTokens = count(hash.prompt_tokens);
  const outputTokens = count(hash.completion_tokens);
  return {
    id: hash.id ?? '',
    object: 'batch',
    endpoint: hash.endpoint ?? '/v1/chat/completions',
    errors: hash.errors ? { object: 'list', data: JSON.parse(hash.errors) as BatchErrorEntry[] } : null,
    input_file_id: hash.input_file_id ?? '',
    completion_window: hash.completion_window ?? '24h',
    status: (hash.status ?? 'validating') as BatchStatus,
    output_file_id: hash.output_file_id || null,
    error_file_id: hash.error_file_id || null,
    created_at: count(hash.created_at),
    in_progress_at: orNull(hash.in_progress_at),
    expires_at: orNull(hash.expires_at),
    finalizing_at: orNull(hash.finalizing_at),
    completed_at: orNull(hash.completed_at),
    failed_at: orNull(hash.failed_at),
    expired_at: orNull(hash.expired_at),
    cancelling_at: orNull(hash.cancelling_at),
    cancelled_at: orNull(hash.cancelled_at),
    request_counts: requestCounts,
    metadata: hash.metadata ? (JSON.parse(hash.metadata) as Record<string, string>) : null,
    usage: {
      input_tokens: inputTokens,
      input_tokens_details: { cached_tokens: 0 },
      output_tokens: outputTokens,
      output_tokens_details: { reasoning_tokens: 0 },
      total_tokens: inputTokens + outputTokens,
    },
    moa: { cost_usd: Number(hash.cost_usd ?? 0) || 0, cancelled },
  };
}

/** Reads a batch's hash; undefined when there is no such batch. */
export async function readBatchHash(
  redis: Redis,
  prefix: string,
  batchId: string,
): Promise<Record<string, string> | undefined> {
  const hash = await redis.hgetall(batchKey(prefix, batchId));
  return hash.id ? hash : undefined;
}

/** Batches of a tenant's index read per round trip while counting its active items. */
const ACTIVE_SCAN_PAGE = 500;

/**
 * A tenant's batch items that have not ended yet, over all of its batches
 * that have not ended (its `maxActiveBatchItems` quota). Derived from the
 * batches themselves every time, so it cannot drift: per batch, its size
 * (`total` once validated, the input file's line count before) less the
 * items completed, failed and cancelled so far.
 */
export async function countActiveBatchItems(redis: Redis, prefix: string, tenant: string): Promise<number> {
  const index = batchIndexKey(prefix, tenant);
  let active = 0;
  for (let start = 0; ; start += ACTIVE_SCAN_PAGE) {
    const ids = await redis.zrange(index, start, start + ACTIVE_SCAN_PAGE - 1);
    if (ids.length === 0) break;
    const pipeline = redis.pipeline();
    for (const id of ids) {
      pipeline.hmget(
        batchKey(prefix, id),
        'status',
        'validated',
        'total',
        'lines',
        'completed',
        'failed',
        'cancelled',
      );
    }
    for (const [error, fields] of (await pipeline.exec()) ?? []) {
      if (error) throw error;
      const [status, validated, total, lines, completed, failed, cancelled] = fields as (string | null)[];
      if (!status || TERMINAL_BATCH_STATUSES.has(status)) continue;
      const size = count(validated === '1' ? (total ?? undefined) : (lines ?? total ?? undefined));
      const ended =
        count(completed ?? undefined) + count(failed ?? undefined) + count(cancelled ?? undefined);
      active += Math.max(0, size - ended);
    }
    if (ids.length < ACTIVE_SCAN_PAGE) break;
  }
  return active;
}
