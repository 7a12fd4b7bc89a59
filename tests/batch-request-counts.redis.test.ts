import {
  batchErrorLine,
  batchItemRequestId,
  batchKey,
  newBatchRequestId,
  queueBatchJob,
  recordBatchItem,
  type RequestJobData,
} from '@moa-queue/contract';
import { pollUntil } from '@moa-queue/test-support';
import OpenAI, { toFile } from 'openai';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { batchInput } from './support/batch-input.js';
import { startMoaStack, type MoaStack } from './support/moa-stack.js';

type Batch = OpenAI.Batches.Batch & { moa: { cost_usd: number; cancelled: number } };

/** A line of an output or error file, as far as these tests read it. */
interface FileLine {
  custom_id: string | null;
  error: { code: string } | null;
}

const TERMINAL = ['completed', 'failed', 'cancelled', 'expired'];

/** The API's limits in this suite: a line of more than 1,500 bytes is too long, a file of more than 20 lines too big. */
const MAX_LINE_BYTES = 1500;
const MAX_LINES = 20;

const line = (customId: string, body: Record<string, unknown>, url = '/v1/chat/completions') =>
  JSON.stringify({ custom_id: customId, method: 'POST', url, body });
const ask = (customId: string, model = 'three') =>
  line(customId, { model, messages: [{ role: 'user', content: `question ${customId}` }] });

/** One way a batch can end, and the counts it must end with. */
interface Path {
  name: string;
  input: string;
  /** Done with the batches queue paused, before the validation runs. */
  beforeValidation?: (stack: MoaStack, client: OpenAI, batch: Batch) => Promise<void>;
  /** Done once the items run (the aggregators are held meanwhile when set). */
  whileRunning?: (stack: MoaStack, client: OpenAI, batch: Batch) => Promise<void>;
  holdAggregator?: boolean;
  status: string;
  counts: { total: number; completed: number; failed: number };
  /** Requests not run (`moa.cancelled`), when known beforehand. */
  cancelled?: number;
  /** Codes of the batch's first `errors` (a failed batch), in order. */
  errors?: string[];
  /** Codes of the error file's lines, sorted. */
  errorLines?: string[];
}

const PATHS: Path[] = [
  {
    name: 'a JSON array over several lines (not JSONL)',
    // Each element over a few lines, as a pretty-printed array is: no line is a JSON object.
    input: `[\n${[ask('array-0'), ask('array-1')].map((entry) => entry.replace(',"method"', ',\n"method"')).join(',\n')}\n]`,
    status: 'failed',
    counts: { total: 0, completed: 0, failed: 0 },
    errors: ['invalid_file', 'invalid_json', 'invalid_json'],
  },
  {
    name: 'a JSON array on one line',
    input: JSON.stringify([JSON.parse(ask('array-0'))]),
    status: 'failed',
    counts: { total: 0, completed: 0, failed: 0 },
    errors: ['invalid_file', 'invalid_request'],
  },
  {
    name: 'plain text',
    input: 'first prompt\nsecond prompt',
    status: 'failed',
    counts: { total: 0, completed: 0, failed: 0 },
    errors: ['invalid_file', 'invalid_json', 'invalid_json'],
  },
  {
    name: 'a file of blank lines only',
    input: '\n  \n\n',
    status: 'failed',
    counts: { total: 0, completed: 0, failed: 0 },
    errors: ['empty_file'],
  },
  {
    name: 'more lines than a batch takes',
    input: batchInput(MAX_LINES + 1, 'many'),
    status: 'failed',
    counts: { total: 0, completed: 0, failed: 0 },
    errors: ['too_many_requests'],
  },
  {
    name: 'an input file deleted before its validation',
    input: batchInput(3, 'deleted'),
    beforeValidation: async (_stack, client, batch) => {
      await client.files.delete(batch.input_file_id);
    },
    status: 'failed',
    counts: { total: 0, completed: 0, failed: 0 },
    errors: ['file_not_found'],
  },
  {
    name: 'every line invalid',
    input: [ask('bad-0', 'no-such-preset'), ask('bad-1', 'no-such-preset'), '{"custom_id": 3}'].join('\n'),
    status: 'completed',
    counts: { total: 3, completed: 0, failed: 3 },
    errorLines: ['missing_custom_id', 'model_not_found', 'model_not_found'],
  },
  {
    name: 'some lines invalid, one over the line limit',
    input: [
      ask('some-0'),
      'not json',
      ask('some-0'),
      ask('some-2'),
      line('some-long', {
        model: 'three',
        messages: [{ role: 'user', content: 'x'.repeat(MAX_LINE_BYTES) }],
      }),
      line('some-url', { model: 'three', messages: [] }, '/v1/embeddings'),
    ].join('\n'),
    status: 'completed',
    counts: { total: 6, completed: 2, failed: 4 },
    errorLines: ['duplicate_custom_id', 'invalid_json', 'invalid_url', 'request_too_large'],
  },
  {
    name: 'every item failing when it runs',
    input: [ask('dead-0', 'all-dead'), ask('dead-1', 'all-dead')].join('\n'),
    status: 'completed',
    counts: { total: 2, completed: 0, failed: 2 },
  },
  {
    name: 'a cancel while validating',
    input: batchInput(5, 'early'),
    beforeValidation: async (_stack, client, batch) => {
      await client.batches.cancel(batch.id);
    },
    status: 'cancelled',
    counts: { total: 0, completed: 0, failed: 0 },
    cancelled: 0,
  },
  {
    name: 'a cancel while in progress, with a bad line',
    input: `${batchInput(4, 'late')}\nnot json`,
    holdAggregator: true,
    whileRunning: async (stack, client, batch) => {
      await pollUntil(
        () => stack.fake.held('aggregator'),
        (held) => held >= 1,
      );
      // The held aggregators are aborted by the cancel, never answered: no item completes.
      await client.batches.cancel(batch.id);
    },
    status: 'cancelled',
    counts: { total: 5, completed: 0, failed: 1 },
    cancelled: 4,
  },
];

/**
 * Issue 13: `request_counts` on every path a batch can fail or end, with
 * the rule of `requestCountsOf`: a failed batch counts 0/0/0 (its `errors`
 * say why); any other ended batch has `completed + failed + moa.cancelled =
 * total`, as many output lines as `completed` and as many error lines as
 * `failed + moa.cancelled`. (Expiry: tests/batch-lifecycle.redis.test.ts;
 * a validation killed midway: tests/batch-validation-crash.redis.test.ts.)
 */
describe('request_counts on every path a batch ends', () => {
  let stack: MoaStack;
  let client: OpenAI;

  beforeAll(async () => {
    stack = await startMoaStack({
      name: 'batch-request-counts',
      redisUrl: inject('redisUrl'),
      workers: 1,
      app: { maxBodyBytes: MAX_LINE_BYTES, batches: { maxLines: MAX_LINES } },
    });
    stack.fake.setBehaviour('dead', { failStatus: 400 });
    client = new OpenAI({ baseURL: `${await stack.listen()}/v1`, apiKey: 'unused', maxRetries: 0 });
  });
  afterAll(async () => {
    stack?.fake.setBehaviour('dead', undefined);
    stack?.fake.setBehaviour('aggregator', undefined);
    stack?.fake.release();
    await stack?.queues.batches.resume();
    await stack?.stop();
  });

  const linesOf = async (fileId: string | null | undefined): Promise<FileLine[]> => {
    if (!fileId) return [];
    const text = (await (await client.files.content(fileId)).text()).trim();
    return text === '' ? [] : text.split('\n').map((entry) => JSON.parse(entry) as FileLine);
  };

  /** The rule every ended batch keeps, whatever its path. */
  async function expectConsistent(batch: Batch): Promise<{ output: FileLine[]; errors: FileLine[] }> {
    const counts = batch.request_counts!;
    const output = await linesOf(batch.output_file_id);
    const errors = await linesOf(batch.error_file_id);
    if (batch.status === 'failed') {
      expect(counts).toEqual({ total: 0, completed: 0, failed: 0 });
      expect(batch.moa.cancelled).toBe(0);
      expect(batch.output_file_id).toBeNull();
      expect(batch.error_file_id).toBeNull();
      expect(batch.errors?.data?.length).toBeGreaterThan(0);
    } else {
      expect(counts.completed + counts.failed + batch.moa.cancelled).toBe(counts.total);
      expect(output).toHaveLength(counts.completed);
      expect(errors).toHaveLength(counts.failed + batch.moa.cancelled);
    }
    return { output, errors };
  }

  it.each(PATHS)('$name', async (path) => {
    const file = await client.files.create({
      file: await toFile(Buffer.from(path.input), 'input.jsonl'),
      purpose: 'batch',
    });
    if (path.holdAggregator) stack.fake.setBehaviour('aggregator', { hold: true });
    if (path.beforeValidation) await stack.queues.batches.pause();
    let created: Batch;
    try {
      created = (await client.batches.create({
        input_file_id: file.id,
        endpoint: '/v1/chat/completions',
        completion_window: '24h',
      })) as Batch;
      expect(created.request_counts).toEqual({ total: 0, completed: 0, failed: 0 });
      await path.beforeValidation?.(stack, client, created);
    } finally {
      await stack.queues.batches.resume();
    }
    let ended: Batch;
    try {
      await path.whileRunning?.(stack, client, created);
      ended = await pollUntil(
        async () => (await client.batches.retrieve(created.id)) as Batch,
        (batch) => TERMINAL.includes(batch.status),
      );
    } finally {
      if (path.holdAggregator) {
        stack.fake.setBehaviour('aggregator', undefined);
        stack.fake.release('aggregator');
      }
    }
    expect(ended.status).toBe(path.status);
    expect(ended.request_counts).toEqual(path.counts);
    if (path.cancelled !== undefined) expect(ended.moa.cancelled).toBe(path.cancelled);
    if (path.errors) {
      const codes = ended.errors?.data?.map((entry) => entry.code) ?? [];
      expect(codes.slice(0, path.errors.length)).toEqual(path.errors);
    }
    const { errors } = await expectConsistent(ended);
    if (path.errorLines) expect(errors.map((entry) => entry.error?.code).sort()).toEqual(path.errorLines);
  });

  it('a forced finalization counts the items that never reported, each with an error line', async () => {
    const { redis, prefix, queues } = stack;
    const batchId = 'batch_neverreported';
    const now = Date.now();
    await redis.hset(batchKey(prefix, batchId), {
      id: batchId,
      tenant: 'default',
      status: 'cancelling',
      ending: 'cancelled',
      validated: '1',
      endpoint: '/v1/chat/completions',
      input_file_id: 'file-gone',
      completion_window: '24h',
      created_at: Math.floor(now / 1000),
      cancelling_at: Math.floor(now / 1000),
      total: 3,
      items: 3,
      completed: 0,
      failed: 0,
      cancelled: 0,
    });
    // Item 0 reported (failed); item 1 is a request that never ends (delayed for an hour);
    // item 2 left no trace at all.
    const lineId = newBatchRequestId();
    await recordBatchItem(redis, prefix, batchId, {
      customId: 'reported',
      kind: 'failed',
      line: batchErrorLine(lineId, 'reported', { code: 'moa_failed', message: 'boom' }),
      lineId,
      costUsd: null,
      promptTokens: 0,
      completionTokens: 0,
      requestId: batchItemRequestId(batchId, 0),
    });
    const stuck: RequestJobData = {
      requestId: batchItemRequestId(batchId, 1),
      tenant: 'default',
      preset: stack.config.presets['three']!,
      messages: [{ role: 'user', content: 'never runs' }],
      metadata: {},
      createdAt: now,
      source: 'batch',
      batch: { id: batchId, customId: 'stuck' },
    };
    await queues.requests.add('moa', stuck, { jobId: stuck.requestId, delay: 3_600_000 });
    try {
      await queueBatchJob(queues, 'force-finalize', batchId);
      const ended = await pollUntil(
        async () => (await client.batches.retrieve(batchId)) as Batch,
        (batch) => TERMINAL.includes(batch.status),
      );
      expect(ended.status).toBe('cancelled');
      expect(ended.request_counts).toEqual({ total: 3, completed: 0, failed: 1 });
      expect(ended.moa.cancelled).toBe(2);
      const { errors } = await expectConsistent(ended);
      expect(errors.map((entry) => [entry.custom_id, entry.error?.code])).toEqual(
        expect.arrayContaining([
          ['reported', 'moa_failed'],
          ['stuck', 'batch_cancelled'],
          [null, 'batch_cancelled'],
        ]),
      );
      // A late report changes nothing.
      const late = newBatchRequestId();
      expect(
        await recordBatchItem(redis, prefix, batchId, {
          customId: 'stuck',
          kind: 'completed',
          line: '{}',
          lineId: late,
          costUsd: null,
          promptTokens: 0,
          completionTokens: 0,
        }),
      ).toEqual({ recorded: false, finalize: false });
    } finally {
      await queues.requests.remove(stuck.requestId);
    }
  });
});
