import {
  BATCH_ITEM_RETENTION,
  BATCH_ENQUEUE_CHUNK,
  batchErrorKey,
  batchErrorLine,
  batchItemPriority,
  batchItemRequestId,
  batchKey,
  batchSeenKey,
  failBatch,
  indexTenantRequests,
  markBatchValidated,
  newBatchRequestId,
  queueBatchJob,
  readFileLines,
  type RequestJobData,
  type StoredFile,
} from '@moa-queue/contract';
import { ApiError } from '../api-error.js';
import { chatCompletionSchema } from '../chat-schema.js';
import { newRequestData } from '../new-request.js';
import { parseOrThrow } from '../validation.js';
import type { BatchRouteDependencies } from './batch-options.js';

/** One input line after parsing: an item to run, or an error for the error file. */
interface ParsedLine {
  index: number;
  customId: string | null;
  data?: RequestJobData;
  error?: { code: string; message: string; param?: string | null };
}

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** A batch and the tenant that owns it (and so its items). */
export interface BatchOwner {
  id: string;
  tenant: string;
}

/** Parses and checks one line; `json` tells whether it was a JSON object at all. */
function parseLine(
  dependencies: BatchRouteDependencies,
  batch: BatchOwner,
  endpoint: string,
  index: number,
  text: string,
): ParsedLine & { json: boolean } {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return {
      index,
      customId: null,
      json: false,
      error: { code: 'invalid_json', message: `Line is not valid JSON: ${(error as Error).message}` },
    };
  }
  if (!isRecord(value)) {
    return {
      index,
      customId: null,
      json: false,
      error: { code: 'invalid_request', message: 'Line must be a JSON object' },
    };
  }
  const customId = typeof value.custom_id === 'string' && value.custom_id.length > 0 ? value.custom_id : null;
  const fail = (code: string, message: string, param: string | null = null) => ({
    index,
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
  let body;
  try {
    body = parseOrThrow(chatCompletionSchema, value.body);
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    return fail('invalid_request', error.message, error.param ? `body.${error.param}` : 'body');
  }
  if (body.stream) return fail('invalid_request', 'stream is not supported in a batch', 'body.stream');
  const { presets } = dependencies.config;
  const preset = Object.hasOwn(presets, body.model) ? presets[body.model] : undefined;
  if (!preset) {
    return fail(
      'model_not_found',
      `The model ${JSON.stringify(body.model)} does not exist; models are presets: ${Object.keys(presets).join(', ')}`,
      'body.model',
    );
  }
  const data: RequestJobData = {
    ...newRequestData({
      tenant: batch.tenant,
      preset,
      messages: body.messages,
      metadata: body.metadata ?? undefined,
      source: 'batch',
      maxTokens: body.max_completion_tokens ?? body.max_tokens ?? undefined,
    }),
    requestId: batchItemRequestId(batch.id, index),
    batch: { id: batch.id, customId },
  };
  return { index, customId, json: true, data };
}

/**
 * Validates a batch's input file line by line and enqueues its items in
 * chunks with `addBulk`, at a priority below interactive requests. A bad
 * line goes to the error file and counts as failed; a file that cannot be
 * used at all fails the batch. Holds one chunk of lines at a time.
 */
export async function validateAndEnqueue(
  dependencies: BatchRouteDependencies,
  batch: BatchOwner,
  endpoint: string,
  file: StoredFile,
): Promise<void> {
  const batchId = batch.id;
  const { redis, queues } = dependencies;
  const { prefix } = queues;
  const key = batchKey(prefix, batchId);
  const fileError = (code: string, message: string) =>
    failBatch(redis, prefix, batchId, [{ code, message, param: 'input_file_id', line: null }]);
  if (!file.utf8) return void (await fileError('invalid_file', 'The input file is not UTF-8 text'));
  if (file.lines === 0) return void (await fileError('empty_file', 'The input file has no lines'));
  if (file.lines > dependencies.options.maxLines) {
    return void (await fileError(
      'too_many_requests',
      `The input file has ${file.lines} lines; a batch takes at most ${dependencies.options.maxLines}`,
    ));
  }

  let processed = 0;
  let jsonLines = 0;
  let stopped = false;
  const firstErrors: { code: string; message: string; param: string | null; line: number }[] = [];
  let chunk: (ParsedLine & { line: number })[] = [];

  const flush = async () => {
    if (chunk.length === 0) return;
    const entries = chunk;
    chunk = [];
    // Duplicates are found in Redis (SADD answers 0 for a custom_id seen before), not in a set held here.
    const seen = redis.pipeline();
    for (const entry of entries)
      if (entry.customId !== null) seen.sadd(batchSeenKey(prefix, batchId), entry.customId);
    const answers = (await seen.exec()) ?? [];
    let answer = 0;
    for (const entry of entries) {
      if (entry.customId === null) continue;
      const added = answers[answer++]?.[1];
      if (added === 0) {
        entry.data = undefined;
        entry.error = {
          code: 'duplicate_custom_id',
          message: `custom_id ${JSON.stringify(entry.customId)} is used by an earlier line`,
          param: 'custom_id',
        };
      }
    }
    const items = entries.filter((entry) => entry.data);
    const errors = entries.filter((entry) => entry.error);
    if (items.length > 0) {
      await queues.requests.addBulk(
        items.map((entry) => ({
          name: 'moa',
          data: entry.data as RequestJobData,
          opts: {
            jobId: (entry.data as RequestJobData).requestId,
            priority: batchItemPriority(entry.index),
            removeOnComplete: BATCH_ITEM_RETENTION,
            removeOnFail: BATCH_ITEM_RETENTION,
          },
        })),
      );
    }
    processed += entries.length;
    const update = redis.multi();
    indexTenantRequests(
      update,
      prefix,
      batch.tenant,
      items.map((entry) => entry.data as RequestJobData),
    );
    if (errors.length > 0) {
      update.rpush(
        batchErrorKey(prefix, batchId),
        ...errors.map((entry) =>
          batchErrorLine(newBatchRequestId(), entry.customId, {
            code: entry.error!.code,
            message: `Line ${entry.line}: ${entry.error!.message}`,
          }),
        ),
      );
      update.hincrby(key, 'failed', errors.length);
      for (const entry of errors) {
        if (firstErrors.length < 20)
          firstErrors.push({ ...entry.error!, param: entry.error!.param ?? null, line: entry.line });
      }
    }
    update.hset(key, 'items', processed, 'heartbeat', Date.now());
    update.hget(key, 'status');
    const results = (await update.exec()) ?? [];
    const status = results.at(-1)?.[1];
    if (status !== 'validating') stopped = true; // cancelled meanwhile, or failed by the watchdog
  };

  for await (const line of readFileLines(redis, prefix, file.id, dependencies.maxLineBytes)) {
    if (!line.tooLong && line.text.trim() === '') continue;
    const index = processed + chunk.length;
    if (line.tooLong) {
      chunk.push({
        index,
        customId: null,
        line: line.number,
        error: {
          code: 'request_too_large',
          message: `Line is longer than ${dependencies.maxLineBytes} bytes`,
        },
      });
    } else {
      const parsed = parseLine(dependencies, batch, endpoint, index, line.text);
      if (parsed.json) jsonLines += 1;
      chunk.push({ ...parsed, line: line.number });
    }
    if (chunk.length >= BATCH_ENQUEUE_CHUNK) {
      await flush();
      if (stopped) break;
    }
  }
  if (!stopped) await flush();

  if (jsonLines === 0 && !stopped) {
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
    return;
  }
  const { drain, finalize } = await markBatchValidated(redis, prefix, batchId, processed);
  if (drain) await queueBatchJob(queues, 'drain', batchId);
  if (finalize) await queueBatchJob(queues, 'finalize', batchId);
}
