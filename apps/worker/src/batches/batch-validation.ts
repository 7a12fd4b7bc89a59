import {
  BATCH_LIMITS,
  BATCH_VALIDATION_CHUNK_BYTES,
  BATCH_VALIDATION_CHUNK_LINES,
  batchErrorLine,
  batchItemPriority,
  batchItemRequestId,
  aggregatorOptionsOf,
  policyOverridesOf,
  chatCompletionSchema,
  claimBatchCustomIds,
  commitValidationChunk,
  FILE_ID_PATTERN,
  FileStoreError,
  failBatch,
  indexTenantRequests,
  markBatchValidated,
  maxTokensOf,
  newBatchRequestId,
  newRequestData,
  ownerTenant,
  queueBatchJob,
  readBatchHash,
  readStoredFile,
  describeRequestIssue,
  responseEchoOf,
  responsesRequestOf,
  responsesRequestSchema,
  TERMINAL_BATCH_STATUSES,
  validationCheckpointOf,
  type BatchErrorEntry,
  type FileStore,
  type MoaQueues,
  type RequestJobData,
} from '@moa-queue/contract';
import type { MoaConfig, PresetConfig } from '@moa-queue/moa';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { collectGarbage } from './collect-garbage.js';
import { readLinesFrom } from './file-line-reader.js';

/** What a batch validation needs. */
export interface BatchValidationDependencies {
  queues: MoaQueues;
  redis: Redis;
  /** Where the input file's content is. */
  files: FileStore;
  /** Presets: a line's `body.model` names one, and its item runs a snapshot of it. */
  config: MoaConfig;
  logger: Logger;
}

/** The JSON body limit's default (`MOA_MAX_BODY_BYTES`), for a batch whose API did not record its own. */
const DEFAULT_MAX_LINE_BYTES = 4 * 1024 * 1024;

/**
 * A full garbage collection follows every this many bytes of line text
 * (see collect-garbage.ts): with lines of a few MB, that is after each one.
 */
const COLLECT_GARBAGE_EVERY_BYTES = 2 * 1024 * 1024;

/** Errors of a file that is not JSONL at all, kept to explain its failure. */
const MAX_FIRST_ERRORS = 20;

interface LineError {
  code: string;
  message: string;
  param: string | null;
}

/** One non-blank input line after parsing: an item to run, or an error for the error file. */
interface ParsedLine {
  /** The item's index among the file's non-blank lines. */
  index: number;
  /** 1-based line number in the file. */
  line: number;
  customId: string | null;
  data?: RequestJobData;
  error?: LineError;
}

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/**
 * Parses and checks one line exactly as the batch's endpoint (`POST
 * /v1/chat/completions` or `POST /v1/responses`) checks its body (the same
 * schema, the same messages); `json` tells whether the line was a JSON
 * object at all.
 */
function parseLine(
  presets: MoaConfig['presets'],
  batch: { id: string; tenant: string },
  endpoint: string,
  index: number,
  line: number,
  text: string,
): ParsedLine & { json: boolean } {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return {
      index,
      line,
      customId: null,
      json: false,
      error: {
        code: 'invalid_json',
        message: `Line is not valid JSON: ${(error as Error).message}`,
        param: null,
      },
    };
  }
  if (!isRecord(value)) {
    return {
      index,
      line,
      customId: null,
      json: false,
      error: { code: 'invalid_request', message: 'Line must be a JSON object', param: null },
    };
  }
  const customId = typeof value.custom_id === 'string' && value.custom_id.length > 0 ? value.custom_id : null;
  const fail = (code: string, message: string, param: string | null = null) => ({
    index,
    line,
    customId,
    json: true,
    error: { code, message, param },
  });
  if (customId === null)
    return fail('missing_custom_id', 'custom_id must be a non-empty string', 'custom_id');
  if (customId.length > 512)
    return fail('invalid_custom_id', 'custom_id must be at most 512 characters', 'custom_id');
  if (value.method !== 'POST') return fail('invalid_method', 'method must be "POST"', 'method');
  if (value.url !== endpoint)
    return fail('invalid_url', `url must be ${JSON.stringify(endpoint)}, the batch's endpoint`, 'url');
  const responses = endpoint === '/v1/responses';
  const parsed = responses
    ? responsesRequestSchema.safeParse(value.body)
    : chatCompletionSchema.safeParse(value.body);
  if (!parsed.success) {
    const { param, code, message } = describeRequestIssue(parsed.error, 'invalid_request');
    return fail(code, message, param ? `body.${param}` : 'body');
  }
  const body = parsed.data;
  if (body.stream) return fail('invalid_request', 'stream is not supported in a batch', 'body.stream');
  const preset: PresetConfig | undefined = Object.hasOwn(presets, body.model)
    ? presets[body.model]
    : undefined;
  if (!preset) {
    return fail(
      'model_not_found',
      `The model ${JSON.stringify(body.model)} does not exist; models are presets: ${Object.keys(presets).join(', ')}`,
      'body.model',
    );
  }
  // A Responses API line becomes messages and options as `POST /v1/responses` makes them.
  const request =
    'input' in body
      ? responsesRequestOf(body)
      : {
          messages: body.messages,
          maxTokens: maxTokensOf(body),
          aggregatorOptions: aggregatorOptionsOf(body),
          policies: policyOverridesOf(body.moa),
        };
  const data: RequestJobData = {
    ...newRequestData({
      tenant: batch.tenant,
      preset,
      messages: request.messages,
      metadata: body.metadata ?? undefined,
      source: 'batch',
      maxTokens: request.maxTokens,
      aggregatorOptions: request.aggregatorOptions,
      policies: request.policies,
    }),
    requestId: batchItemRequestId(batch.id, index),
    batch: { id: batch.id, customId, ...('input' in body ? { response: responseEchoOf(body) } : {}) },
  };
  return { index, line, customId, json: true, data };
}

/** A positive integer from a hash field, or the fallback. */
function positive(value: string | undefined, fallback: number): number {
  const number = Number(value);
  return Number.isSafeInteger(number) && number > 0 ? number : fallback;
}

/**
 * Validates a batch's input file and enqueues its items: the `validate` job
 * of the batches queue. Reads the file line by line from the file store and sends
 * chunks bounded by lines and by bytes (so memory stays bounded whatever
 * the file and its lines' sizes). Each chunk is claimed (its custom ids),
 * enqueued (deterministic item ids) and committed (error lines, counts and
 * the checkpoint, in one script), so a run that dies midway is resumed from
 * its last checkpoint by BullMQ's stalled-job recovery and counts nothing
 * twice. A cancel or the expiry stops it at the next chunk; it then drains
 * what it enqueued.
 */
export async function validateBatch(
  dependencies: BatchValidationDependencies,
  batchId: string,
): Promise<void> {
  const { redis, queues, logger } = dependencies;
  const { prefix } = queues;
  const hash = await readBatchHash(redis, prefix, batchId);
  if (!hash || TERMINAL_BATCH_STATUSES.has(hash.status ?? '')) return;
  if (hash.validated === '1') {
    // A re-run after the validation ended: what it had to queue then may not have been queued.
    if (hash.ending) await queueBatchJob(queues, 'drain', batchId);
    if (hash.finalize === '1') await queueBatchJob(queues, 'finalize', batchId);
    return;
  }
  const batch = { id: batchId, tenant: ownerTenant(hash.tenant) };
  const endpoint = hash.endpoint ?? '/v1/chat/completions';
  const maxLines = positive(hash.max_lines, BATCH_LIMITS.maxLines);
  const maxLineBytes = positive(hash.max_line_bytes, DEFAULT_MAX_LINE_BYTES);
  const checkpoint = validationCheckpointOf(hash);
  const fileError = async (code: string, message: string) => {
    const failed = await failBatch(redis, prefix, batchId, [
      { code, message, param: 'input_file_id', line: null },
    ]);
    logger.info({ batchId, code }, 'batch failed validation');
    // Items an earlier run enqueued must not run for a failed batch; the lines of those that ran are dropped.
    if (failed && (checkpoint.items > 0 || checkpoint.inflight || index > 0)) {
      await dependencies.files.dropSpool(batchId);
      await queueBatchJob(queues, 'drain', batchId);
    }
  };
  let index = checkpoint.items;
  const fileId = hash.input_file_id ?? '';
  const file = FILE_ID_PATTERN.test(fileId) ? await readStoredFile(redis, prefix, fileId) : undefined;
  if (!file) return fileError('file_not_found', `The input file ${JSON.stringify(fileId)} no longer exists`);
  if (!file.utf8) return fileError('invalid_file', 'The input file is not UTF-8 text');
  if (file.lines === 0) return fileError('empty_file', 'The input file has no lines');
  if (file.lines > maxLines) {
    return fileError(
      'too_many_requests',
      `The input file has ${file.lines} lines; a batch takes at most ${maxLines}`,
    );
  }

  // Cancelled or expiring before this run: nothing more is read, except a chunk that a
  // crashed run may have enqueued without committing, which must be counted to be drained.
  const stopping = hash.status !== 'validating' || Boolean(hash.ending);
  if (checkpoint.line > 0 || checkpoint.inflight) {
    logger.info(
      { batchId, fromLine: checkpoint.line, items: checkpoint.items, inflight: checkpoint.inflight },
      'batch validation resumed',
    );
  }

  let committedLine = checkpoint.line;
  let lineNumber = checkpoint.line;
  let position = checkpoint.byte;
  let jsonLines = checkpoint.jsonLines;
  const firstErrors: BatchErrorEntry[] = checkpoint.firstErrors.slice(0, MAX_FIRST_ERRORS);
  let chunk: ParsedLine[] = [];
  let chunkBytes = 0;
  let bytesSinceCollection = 0;

  /** Claims, enqueues and commits the chunk; says whether to read on. */
  const flush = async (): Promise<'go-on' | 'stopped' | 'conflict' | 'ended'> => {
    const entries = chunk;
    chunk = [];
    chunkBytes = 0;
    const claimed = entries.filter((entry) => entry.customId !== null);
    const duplicates = await claimBatchCustomIds(
      redis,
      prefix,
      batchId,
      claimed.map((entry) => ({ customId: entry.customId as string, index: entry.index })),
    );
    if (!duplicates) return 'ended';
    claimed.forEach((entry, position) => {
      if (!duplicates[position]) return;
      entry.data = undefined;
      entry.error = {
        code: 'duplicate_custom_id',
        message: `custom_id ${JSON.stringify(entry.customId)} is used by an earlier line`,
        param: 'custom_id',
      };
    });
    const items = entries.flatMap((entry) => (entry.data ? [{ data: entry.data, index: entry.index }] : []));
    if (items.length > 0) {
      // Item ids are deterministic: a chunk enqueued again by a re-run adds nothing.
      await queues.requests.addBulk(
        items.map(({ data, index: itemIndex }) => ({
          name: 'moa',
          data,
          opts: {
            jobId: data.requestId,
            priority: batchItemPriority(itemIndex),
            // The queue's own retention (see DEFAULT_BATCH_ITEM_GRACE_MS): the sweeper removes items sooner.
          },
        })),
      );
      await indexTenantRequests(
        redis.multi(),
        prefix,
        batch.tenant,
        items.map(({ data }) => data),
      ).exec();
    }
    const errors = entries.filter((entry) => entry.error);
    for (const entry of errors) {
      if (firstErrors.length >= MAX_FIRST_ERRORS) break;
      firstErrors.push({ ...entry.error!, line: entry.line });
    }
    const result = await commitValidationChunk(
      redis,
      prefix,
      batchId,
      committedLine,
      { byte: position, line: lineNumber, items: index, jsonLines, firstErrors },
      errors.map((entry) =>
        batchErrorLine(newBatchRequestId(), entry.customId, {
          code: entry.error!.code,
          message: `Line ${entry.line}: ${entry.error!.message}`,
        }),
      ),
    );
    if (result.outcome !== 'committed') return result.outcome;
    committedLine = lineNumber;
    if (stopping || result.status !== 'validating' || result.ending) return 'stopped';
    return 'go-on';
  };

  /** Reads the file from the checkpoint on, flushing chunks as they fill; how that ended. */
  const readAndFlush = async (): Promise<'done' | 'stopped' | 'conflict' | 'ended'> => {
    for await (const line of readLinesFrom(dependencies.files, file.id, position, maxLineBytes)) {
      lineNumber += 1;
      position = line.next;
      if (!line.tooLong && line.text.trim() === '') continue;
      if (line.tooLong) {
        chunk.push({
          index,
          line: lineNumber,
          customId: null,
          error: {
            code: 'request_too_large',
            message: `Line is longer than ${maxLineBytes} bytes`,
            param: null,
          },
        });
      } else {
        const parsed = parseLine(dependencies.config.presets, batch, endpoint, index, lineNumber, line.text);
        if (parsed.json) jsonLines += 1;
        const { json: _json, ...entry } = parsed;
        chunk.push(entry);
        chunkBytes += line.bytes;
      }
      index += 1;
      if (chunk.length >= BATCH_VALIDATION_CHUNK_LINES || chunkBytes >= BATCH_VALIDATION_CHUNK_BYTES) {
        bytesSinceCollection += chunkBytes;
        const next = await flush();
        if (bytesSinceCollection >= COLLECT_GARBAGE_EVERY_BYTES) {
          collectGarbage();
          bytesSinceCollection = 0;
        }
        if (next !== 'go-on') return next;
      }
    }
    if (chunk.length > 0) {
      const next = await flush();
      if (next !== 'go-on' && next !== 'stopped') return next;
    }
    return 'done';
  };

  // 'done': the whole file was read (or, when stopping, the chunk in flight was finished).
  let outcome: 'done' | 'stopped' | 'conflict' | 'ended' = 'done';
  if (!stopping || checkpoint.inflight) {
    try {
      outcome = await readAndFlush();
    } catch (error) {
      // Its metadata is there but not its content: deleted meanwhile, or processes that disagree on MOA_FILES_DIR.
      if (!(error instanceof FileStoreError && error.code === 'not_committed')) throw error;
      return fileError(
        'file_not_found',
        `The content of the input file ${JSON.stringify(file.id)} is not in the file store: ${error.message}`,
      );
    }
  }
  if (outcome === 'conflict' || outcome === 'ended') {
    logger.info({ batchId, outcome }, 'batch validation stopped: another run or the batch has moved on');
    return;
  }
  // A file deleted while it was read has been read only in part.
  if (!(await readStoredFile(redis, prefix, file.id))) {
    return fileError(
      'file_not_found',
      `The input file ${JSON.stringify(file.id)} was deleted during validation`,
    );
  }
  if (outcome === 'done' && !stopping && jsonLines === 0) {
    // Not JSONL at all (e.g. a JSON array, or plain text): nothing ran, the batch fails with the first errors.
    await failBatch(redis, prefix, batchId, [
      {
        code: 'invalid_file',
        message: 'No line of the input file is a JSON object: the file must be JSONL',
        param: 'input_file_id',
        line: null,
      },
      ...firstErrors,
    ]);
    logger.info({ batchId, code: 'invalid_file' }, 'batch failed validation');
    return;
  }
  const { drain, finalize } = await markBatchValidated(redis, prefix, batchId, index);
  if (drain) await queueBatchJob(queues, 'drain', batchId);
  if (finalize) await queueBatchJob(queues, 'finalize', batchId);
  logger.info(
    { batchId, items: index, stopped: stopping || outcome === 'stopped', drain, finalize },
    'batch validated',
  );
}
