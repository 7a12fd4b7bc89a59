import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import {
  BATCH_RETENTION_SECONDS,
  FILE_CHUNK_BYTES,
  batchDoneKey,
  batchErrorKey,
  batchItemsToForgetKey,
  batchKey,
  batchOutputKey,
  batchSeenKey,
  newBatchRequestId,
  type BatchJobName,
} from './batch-keys.js';
import type { BatchErrorEntry } from './batch-record.js';
import type { MoaQueues } from './moa-queues.js';

/**
 * Every change to a batch's status and counters is one Lua script, so API
 * replicas and workers that touch the same batch at once never lose an
 * update, and an item's outcome is counted exactly once.
 */

const TERMINAL = `local function terminal(status)
  return status == 'completed' or status == 'failed' or status == 'cancelled' or status == 'expired'
end
`;

/** Marks the batch for finalization once every item is accounted for; 1 when it is (or already was). */
const MAYBE_FINALIZE = `local function maybe_finalize(key, now)
  local h = redis.call('HMGET', key, 'validated', 'finalize', 'total', 'completed', 'failed', 'cancelled', 'ending', 'status')
  if h[1] ~= '1' then return 0 end
  if h[2] == '1' then return 1 end
  local done = tonumber(h[4] or '0') + tonumber(h[5] or '0') + tonumber(h[6] or '0')
  if done < tonumber(h[3] or '0') then return 0 end
  redis.call('HSET', key, 'finalize', '1')
  if (h[7] == false or h[7] == '') and h[8] == 'in_progress' then
    redis.call('HSET', key, 'status', 'finalizing', 'finalizing_at', now)
  end
  return 1
end
`;

const RECORD_ITEM = `${TERMINAL}${MAYBE_FINALIZE}
if ARGV[9] ~= '' and ARGV[10] ~= '' then redis.call('ZADD', KEYS[6], 'GT', ARGV[10], ARGV[9]) end
local h0 = redis.call('HMGET', KEYS[1], 'status', 'settled')
local status = h0[1]
if not status or terminal(status) or h0[2] == '1' then return {0, 0} end
if ARGV[9] ~= '' then redis.call('SADD', KEYS[5], ARGV[9]) end
if redis.call('SADD', KEYS[2], ARGV[1]) == 0 then return {0, maybe_finalize(KEYS[1], ARGV[8])} end
local kind = ARGV[2]
local line = ARGV[3]
local counter = 'failed'
if kind == 'completed' then
  counter = 'completed'
elseif kind == 'cancelled' then
  local ending = redis.call('HGET', KEYS[1], 'ending')
  if ending == 'cancelled' or ending == 'expired' then
    counter = 'cancelled'
    local message = 'This request was not executed because the batch was cancelled.'
    if ending == 'expired' then message = 'This request could not be executed before the completion window expired.' end
    line = cjson.encode({id = ARGV[4], custom_id = ARGV[1], response = cjson.null,
      error = {code = 'batch_' .. ending, message = message}})
  end
end
redis.call('HINCRBY', KEYS[1], counter, 1)
if counter == 'completed' then redis.call('RPUSH', KEYS[3], line) else redis.call('RPUSH', KEYS[4], line) end
if ARGV[5] ~= '' then redis.call('HINCRBYFLOAT', KEYS[1], 'cost_usd', ARGV[5]) end
if ARGV[6] ~= '0' then redis.call('HINCRBY', KEYS[1], 'prompt_tokens', ARGV[6]) end
if ARGV[7] ~= '0' then redis.call('HINCRBY', KEYS[1], 'completion_tokens', ARGV[7]) end
return {1, maybe_finalize(KEYS[1], ARGV[8])}
`;

const MARK_VALIDATED = `${MAYBE_FINALIZE}
local h = redis.call('HMGET', KEYS[1], 'status', 'ending')
local status = h[1]
if status ~= 'validating' and status ~= 'cancelling' then return {0, 0} end
redis.call('HSET', KEYS[1], 'total', ARGV[1], 'validated', '1')
redis.call('HDEL', KEYS[1], 'v_inflight')
redis.call('DEL', KEYS[2])
if status == 'validating' then
  redis.call('HSET', KEYS[1], 'status', 'in_progress', 'in_progress_at', ARGV[2])
end
local drain = 0
if h[2] and h[2] ~= '' then drain = 1 end
return {drain, maybe_finalize(KEYS[1], ARGV[2])}
`;

/*
 * Validation claims a chunk's custom ids before it enqueues the chunk's
 * items: the first line with a custom id records its index, and a later line
 * with the same id is a duplicate. A line that finds its own index there is
 * not (a validation re-run after a crash claims its lines again).
 * `v_inflight` says items beyond the committed ones may have been enqueued,
 * so a re-run must finish that chunk even when the batch is being cancelled.
 */
const CLAIM_CUSTOM_IDS = `${TERMINAL}
local status = redis.call('HGET', KEYS[1], 'status')
if not status or terminal(status) then return -1 end
redis.call('HSET', KEYS[1], 'v_inflight', '1')
local duplicates = {}
for i = 2, #ARGV, 2 do
  local duplicate = 0
  if redis.call('HSETNX', KEYS[2], ARGV[i], ARGV[i + 1]) == 0 and redis.call('HGET', KEYS[2], ARGV[i]) ~= ARGV[i + 1] then
    duplicate = 1
  end
  duplicates[#duplicates + 1] = duplicate
end
redis.call('EXPIRE', KEYS[2], ARGV[1])
return duplicates
`;

/*
 * Commits a validated chunk, all or nothing: its error lines and failed
 * count, the items enqueued so far, and the checkpoint (where the next line
 * starts in the file) that a re-run resumes from. Refused when the
 * checkpoint is not the one the chunk started from (another run got there
 * first) or when the batch has ended.
 */
const COMMIT_VALIDATION_CHUNK = `${TERMINAL}
local h = redis.call('HMGET', KEYS[1], 'status', 'ending', 'v_line')
if not h[1] or terminal(h[1]) then return {'ended', ''} end
if (h[3] or '0') ~= ARGV[1] then return {'conflict', ''} end
local errors = #ARGV - 6
if errors > 0 then
  for i = 7, #ARGV, 1000 do
    redis.call('RPUSH', KEYS[2], unpack(ARGV, i, math.min(i + 999, #ARGV)))
  end
  redis.call('HINCRBY', KEYS[1], 'failed', errors)
end
redis.call('HSET', KEYS[1], 'v_byte', ARGV[2], 'v_line', ARGV[3], 'items', ARGV[4], 'json_lines', ARGV[5], 'first_errors', ARGV[6])
redis.call('HDEL', KEYS[1], 'v_inflight', 'v_chunk', 'v_offset')
return {h[1], h[2] or ''}
`;

const REQUEST_CANCEL = `local h = redis.call('HMGET', KEYS[1], 'status', 'ending')
if not h[1] then return 'missing' end
if h[2] and h[2] ~= '' then return 'noop' end
if h[1] ~= 'validating' and h[1] ~= 'in_progress' then return 'noop' end
redis.call('HSET', KEYS[1], 'status', 'cancelling', 'cancelling_at', ARGV[1], 'ending', 'cancelled')
if h[1] == 'validating' then return 'validating' end
return 'drain'
`;

const BEGIN_EXPIRY = `${TERMINAL}
local h = redis.call('HMGET', KEYS[1], 'status', 'ending', 'finalize')
if not h[1] or terminal(h[1]) then return 'noop' end
if h[3] == '1' then return 'finalize' end
if h[2] and h[2] ~= '' then return 'noop' end
if h[1] == 'validating' then
  redis.call('HSET', KEYS[1], 'ending', 'expired')
  return 'validating'
end
if h[1] ~= 'in_progress' then return 'noop' end
redis.call('HSET', KEYS[1], 'ending', 'expired')
return 'drain'
`;

/*
 * A forced finalization's last accounting: every item of a validated batch
 * that has not reported by now is counted as not run (`cancelled` after a
 * cancel or an expiry, else `failed`) with an error line without a
 * custom id, since nothing is known of it but that it is missing. The
 * batch is then settled: no late report changes its counts or lines.
 */
const SETTLE = `${TERMINAL}
local h = redis.call('HMGET', KEYS[1], 'status', 'ending', 'validated', 'total', 'completed', 'failed', 'cancelled')
if not h[1] or terminal(h[1]) or h[3] ~= '1' then return -1 end
redis.call('HSET', KEYS[1], 'settled', '1')
local gap = tonumber(h[4] or '0') - tonumber(h[5] or '0') - tonumber(h[6] or '0') - tonumber(h[7] or '0')
if gap <= 0 then return 0 end
local ending = h[2] or ''
local counter = 'failed'
local code = 'batch_incomplete'
if ending == 'cancelled' or ending == 'expired' then
  counter = 'cancelled'
  code = 'batch_' .. ending
end
local message = 'The outcome of this request was not reported before the batch was finalized.'
for i = 1, gap do
  redis.call('RPUSH', KEYS[2], cjson.encode({id = ARGV[1] .. 'n' .. i, custom_id = cjson.null,
    response = cjson.null, error = {code = code, message = message}}))
end
redis.call('HINCRBY', KEYS[1], counter, gap)
return gap
`;

const COMPLETE = `${TERMINAL}
local h = redis.call('HMGET', KEYS[1], 'status', 'ending', 'finalize', 'finalizing_at')
if not h[1] or terminal(h[1]) then return 0 end
if h[3] ~= '1' and ARGV[5] ~= '1' then return 0 end
local final = 'completed'
if h[2] == 'cancelled' then final = 'cancelled' elseif h[2] == 'expired' then final = 'expired' end
redis.call('HSET', KEYS[1], 'status', final, final .. '_at', ARGV[3], 'output_file_id', ARGV[1], 'error_file_id', ARGV[2], 'finalize', '1')
if final == 'completed' and not h[4] then redis.call('HSET', KEYS[1], 'finalizing_at', ARGV[3]) end
redis.call('DEL', KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6])
redis.call('EXPIRE', KEYS[1], ARGV[4])
return 1
`;

const FAIL = `${TERMINAL}
local status = redis.call('HGET', KEYS[1], 'status')
if not status or terminal(status) then return 0 end
redis.call('HSET', KEYS[1], 'status', 'failed', 'failed_at', ARGV[2], 'errors', ARGV[1])
redis.call('DEL', KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 1
`;

const shas = new Map<string, string>();

async function runScript(
  redis: Redis,
  script: string,
  keys: string[],
  args: (string | number)[],
): Promise<unknown> {
  let sha = shas.get(script);
  if (!sha) {
    sha = createHash('sha1').update(script).digest('hex');
    shas.set(script, sha);
  }
  try {
    return await redis.evalsha(sha, keys.length, ...keys, ...args);
  } catch (error) {
    if (!(error instanceof Error) || !error.message.includes('NOSCRIPT')) throw error;
    return redis.eval(script, keys.length, ...keys, ...args);
  }
}

const nowSeconds = () => Math.floor(Date.now() / 1000);

/**
 * Request ids of the items whose outcome has been recorded (a set), beside
 * the custom ids in `batchDoneKey`: the reconciler finds items that ended
 * without being recorded by comparing it with BullMQ's state of each item.
 */
export const batchDoneRequestsKey = (prefix: string, batchId: string): string =>
  `${prefix}:moa-batch:${batchId}:done-requests`;

const allKeys = (prefix: string, batchId: string) => [
  batchKey(prefix, batchId),
  batchDoneKey(prefix, batchId),
  batchSeenKey(prefix, batchId),
  batchOutputKey(prefix, batchId),
  batchErrorKey(prefix, batchId),
  batchDoneRequestsKey(prefix, batchId),
];

/** How a batch item ended, as counted: completed (output file) or failed/cancelled (error file). */
export interface BatchItemOutcome {
  customId: string;
  kind: 'completed' | 'failed' | 'cancelled';
  /**
   * The entry for the batch's output or error list: the line (JSON), or
   * where the file store spooled it (`FileStore.spoolLine`). For `cancelled`
   * during a batch cancel or expiry, the script pushes a line of its own.
   */
  line: string;
  /** The `id` of the line (`batch_req_…`). */
  lineId: string;
  costUsd: number | null;
  promptTokens: number;
  completionTokens: number;
  /** The item's request id, when it ran: marked as recorded for the reconciler (see `batchDoneRequestsKey`). */
  requestId?: string;
  /**
   * When the item's request may be removed (epoch ms; see
   * `batchItemsToForgetKey`): set in the same script as the line, so no
   * crash can leave a recorded item without it. A later time for the same
   * request wins (a line never promises longer than the request is kept),
   * and it is set even when the batch has ended and the line is refused.
   */
  forgetAt?: number;
}

/**
 * Records an item's outcome once (a re-run orchestrator records nothing new).
 * `finalize` is true when every item is now accounted for: the caller then
 * queues the batch's finalization.
 */
export async function recordBatchItem(
  redis: Redis,
  prefix: string,
  batchId: string,
  outcome: BatchItemOutcome,
): Promise<{ recorded: boolean; finalize: boolean }> {
  const [recorded, finalize] = (await runScript(
    redis,
    RECORD_ITEM,
    [
      batchKey(prefix, batchId),
      batchDoneKey(prefix, batchId),
      batchOutputKey(prefix, batchId),
      batchErrorKey(prefix, batchId),
      batchDoneRequestsKey(prefix, batchId),
      batchItemsToForgetKey(prefix),
    ],
    [
      outcome.customId,
      outcome.kind,
      outcome.line,
      outcome.lineId,
      outcome.costUsd === null || !Number.isFinite(outcome.costUsd) ? '' : String(outcome.costUsd),
      outcome.promptTokens,
      outcome.completionTokens,
      nowSeconds(),
      outcome.requestId ?? '',
      outcome.forgetAt === undefined ? '' : Math.ceil(outcome.forgetAt),
    ],
  )) as [number, number];
  return { recorded: recorded === 1, finalize: finalize === 1 };
}

/**
 * Ends validation: the total is known, and the batch is `in_progress` (or
 * still `cancelling`). `drain` when a cancel or the expiry came in meanwhile.
 */
export async function markBatchValidated(
  redis: Redis,
  prefix: string,
  batchId: string,
  total: number,
): Promise<{ drain: boolean; finalize: boolean }> {
  const [drain, finalize] = (await runScript(
    redis,
    MARK_VALIDATED,
    [batchKey(prefix, batchId), batchSeenKey(prefix, batchId)],
    [total, nowSeconds()],
  )) as [number, number];
  return { drain: drain === 1, finalize: finalize === 1 };
}

/**
 * Claims the custom ids of a chunk of input lines (and marks a chunk in
 * flight). For each entry, in order: whether it duplicates an earlier line's
 * custom id. Undefined when the batch has ended (nothing is claimed then).
 */
export async function claimBatchCustomIds(
  redis: Redis,
  prefix: string,
  batchId: string,
  entries: readonly { customId: string; index: number }[],
): Promise<boolean[] | undefined> {
  const answer = (await runScript(
    redis,
    CLAIM_CUSTOM_IDS,
    [batchKey(prefix, batchId), batchSeenKey(prefix, batchId)],
    [BATCH_RETENTION_SECONDS, ...entries.flatMap((entry) => [entry.customId, String(entry.index)])],
  )) as number | number[];
  return Array.isArray(answer) ? answer.map((flag) => flag === 1) : undefined;
}

/** Where validation stands: the next line's place in the file, and what it has found so far. */
export interface ValidationCheckpoint {
  /** The byte of the file where the next line starts. */
  byte: number;
  /** Lines of the file read so far, blank ones included. */
  line: number;
  /** Items (non-blank lines) so far: the index of the next one. */
  items: number;
  /** Lines so far that were JSON objects. */
  jsonLines: number;
  /** The first errors (at most 20), for a file that turns out not to be JSONL at all. */
  firstErrors: BatchErrorEntry[];
}

/** The checkpoint of a batch's hash (a validation not started yet is at the beginning). */
export function validationCheckpointOf(hash: Record<string, string>): ValidationCheckpoint & {
  inflight: boolean;
} {
  const count = (value: string | undefined) => {
    const number = Number(value ?? 0);
    return Number.isSafeInteger(number) && number >= 0 ? number : 0;
  };
  let firstErrors: BatchErrorEntry[] = [];
  try {
    const parsed: unknown = JSON.parse(hash.first_errors ?? '[]');
    if (Array.isArray(parsed)) firstErrors = parsed as BatchErrorEntry[];
  } catch {
    firstErrors = [];
  }
  return {
    // A checkpoint written before files had stores is a chunk of the Redis list (all but the last full) and an offset in it.
    byte:
      hash.v_byte === undefined
        ? count(hash.v_chunk) * FILE_CHUNK_BYTES + count(hash.v_offset)
        : count(hash.v_byte),
    line: count(hash.v_line),
    items: count(hash.items),
    jsonLines: count(hash.json_lines),
    firstErrors,
    inflight: hash.v_inflight === '1',
  };
}

/**
 * Commits a validated chunk (its error lines, counts and the new checkpoint)
 * if the batch's checkpoint is still at `fromLine`. `committed` carries the
 * batch's status and `ending` (cancelled, expired or empty) as they were
 * then; `conflict`: another run of the validation got further; `ended`: the
 * batch has ended (failed).
 */
export async function commitValidationChunk(
  redis: Redis,
  prefix: string,
  batchId: string,
  fromLine: number,
  next: ValidationCheckpoint,
  errorLines: readonly string[],
): Promise<{ outcome: 'committed'; status: string; ending: string } | { outcome: 'conflict' | 'ended' }> {
  const [first, ending] = (await runScript(
    redis,
    COMMIT_VALIDATION_CHUNK,
    [batchKey(prefix, batchId), batchErrorKey(prefix, batchId)],
    [
      String(fromLine),
      next.byte,
      next.line,
      next.items,
      next.jsonLines,
      JSON.stringify(next.firstErrors),
      ...errorLines,
    ],
  )) as [string, string];
  if (first === 'ended' || first === 'conflict') return { outcome: first };
  return { outcome: 'committed', status: first, ending };
}

/** Moves a batch to cancelling. `drain`: queue the drain now; `validating`: the validator will. */
export async function requestBatchCancel(
  redis: Redis,
  prefix: string,
  batchId: string,
): Promise<'drain' | 'validating' | 'noop' | 'missing'> {
  return (await runScript(redis, REQUEST_CANCEL, [batchKey(prefix, batchId)], [nowSeconds()])) as
    'drain' | 'validating' | 'noop' | 'missing';
}

/**
 * Starts a batch's expiry: `drain` its unfinished items, or `finalize` one
 * already done. `validating`: the batch is marked to expire and its
 * validation stops at its next chunk, then drains what it enqueued.
 */
export async function beginBatchExpiry(
  redis: Redis,
  prefix: string,
  batchId: string,
): Promise<'drain' | 'finalize' | 'validating' | 'noop'> {
  return (await runScript(redis, BEGIN_EXPIRY, [batchKey(prefix, batchId)], [])) as
    'drain' | 'finalize' | 'validating' | 'noop';
}

/**
 * Accounts for the items of a batch that never reported, before a forced
 * finalization makes its files (see `requestCountsOf`): returns how many
 * were missing, -1 when the batch has ended or was never validated.
 */
export async function settleBatchCounts(redis: Redis, prefix: string, batchId: string): Promise<number> {
  return (await runScript(
    redis,
    SETTLE,
    [batchKey(prefix, batchId), batchErrorKey(prefix, batchId)],
    [newBatchRequestId()],
  )) as number;
}

/** Sets a batch's final status with its files and drops its working keys; false when it had already ended. */
export async function completeBatch(
  redis: Redis,
  prefix: string,
  batchId: string,
  files: { outputFileId: string; errorFileId: string },
  force: boolean,
): Promise<boolean> {
  const done = await runScript(redis, COMPLETE, allKeys(prefix, batchId), [
    files.outputFileId,
    files.errorFileId,
    nowSeconds(),
    BATCH_RETENTION_SECONDS,
    force ? '1' : '0',
  ]);
  return done === 1;
}

/** Fails a batch (its file could not be used, or its validation could not finish). */
export async function failBatch(
  redis: Redis,
  prefix: string,
  batchId: string,
  errors: BatchErrorEntry[],
): Promise<boolean> {
  const done = await runScript(redis, FAIL, allKeys(prefix, batchId), [
    JSON.stringify(errors),
    nowSeconds(),
    BATCH_RETENTION_SECONDS,
  ]);
  return done === 1;
}

/** Queues a job on the batches queue under a deterministic id, so it is queued once. */
export async function queueBatchJob(
  queues: MoaQueues,
  name: BatchJobName,
  batchId: string,
  options: { delayMs?: number; idSuffix?: string } = {},
): Promise<void> {
  await queues.batches.add(
    name,
    { batchId },
    {
      jobId: `${batchId}-${name}${options.idSuffix ?? ''}`,
      ...(options.delayMs ? { delay: Math.max(0, options.delayMs) } : {}),
    },
  );
}
