import { createReadStream, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createApp } from '@moa-queue/api';
import OpenAI, { toFile } from 'openai';
import { pino } from 'pino';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startMoaStack, type MoaStack } from './support/moa-stack.js';
import { keysHolding } from './support/redis-values.js';

type Batch = OpenAI.Batches.Batch & { moa: { cost_usd: number; cancelled: number } };

interface OutputLine {
  id: string;
  custom_id: string | null;
  response: { status_code: number; request_id: string; body: Record<string, unknown> } | null;
  error: { code: string; message: string } | null;
}

const validLine = (customId: string, prompt: string, model = 'three') =>
  JSON.stringify({
    custom_id: customId,
    method: 'POST',
    url: '/v1/chat/completions',
    body: { model, messages: [{ role: 'user', content: prompt }] },
  });

async function waitForStatus(
  client: OpenAI,
  id: string,
  statuses: string[],
  timeoutMs = 120_000,
): Promise<Batch> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const batch = (await client.batches.retrieve(id)) as Batch;
    if (statuses.includes(batch.status)) return batch;
    if (Date.now() > deadline)
      throw new Error(`batch ${id} still ${batch.status}: ${JSON.stringify(batch.request_counts)}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function download(client: OpenAI, fileId: string | null | undefined): Promise<OutputLine[]> {
  if (!fileId) return [];
  const text = await (await client.files.content(fileId)).text();
  return text
    .split('\n')
    .filter((line) => line.trim())
    .map((line) => JSON.parse(line) as OutputLine);
}

// Once with files in Redis (the default), once in a directory (MOA_FILES_DIR): the API answers the same.
describe.each([
  { store: 'redis', filesDir: undefined },
  { store: 'directory', filesDir: 'temporary' as const },
])('the OpenAI Batch API through the official SDK, files in $store', ({ store, filesDir }) => {
  let stack: MoaStack;
  let client: OpenAI;
  let directory: string;

  beforeAll(async () => {
    stack = await startMoaStack({
      name: `batch-api-${store}`,
      redisUrl: inject('redisUrl'),
      workers: 2,
      app: { batches: { maxLines: 1000, maxFileBytes: 1024 * 1024 } },
      filesDir,
    });
    client = new OpenAI({ baseURL: `${await stack.listen()}/v1`, apiKey: 'unused', maxRetries: 0 });
    directory = mkdtempSync(join(tmpdir(), 'moa-batch-api-'));
  });
  afterAll(async () => {
    await stack?.stop();
    rmSync(directory, { recursive: true, force: true });
  });

  it('runs a few hundred lines, invalid ones included: counts and joins are exact', async () => {
    const lines: string[] = [];
    const valid = new Map<string, string>();
    const invalid: { customId: string | null; code: string }[] = [];
    for (let index = 0; index < 300; index += 1) {
      const customId = `request-${index}`;
      if (index % 50 === 7) {
        lines.push(`{"custom_id": "${customId}", "method": "POST", "url": `);
        invalid.push({ customId: null, code: 'invalid_json' });
      } else if (index % 50 === 17) {
        lines.push(validLine(customId, `prompt ${index}`, 'no-such-preset'));
        invalid.push({ customId, code: 'model_not_found' });
      } else if (index % 50 === 27) {
        lines.push(
          JSON.stringify({
            custom_id: customId,
            method: 'POST',
            url: '/v1/chat/completions',
            body: { model: 'three' },
          }),
        );
        invalid.push({ customId, code: 'invalid_request' });
      } else if (index % 50 === 37) {
        lines.push(validLine('request-1', `a duplicate at ${index}`));
        invalid.push({ customId: 'request-1', code: 'duplicate_custom_id' });
      } else {
        lines.push(validLine(customId, `prompt ${index}`));
        valid.set(customId, `prompt ${index}`);
      }
    }
    lines.splice(100, 0, '', '   '); // blank lines are skipped, not counted
    const path = join(directory, 'input.jsonl');
    writeFileSync(path, `${lines.join('\n')}\n`);

    const file = await client.files.create({ file: createReadStream(path), purpose: 'batch' });
    expect(file).toMatchObject({
      object: 'file',
      purpose: 'batch',
      status: 'processed',
      filename: 'input.jsonl',
    });
    expect(file.id).toMatch(/^file-/);
    expect(file.bytes).toBe(Buffer.byteLength(`${lines.join('\n')}\n`));
    expect(await (await client.files.content(file.id)).text()).toBe(`${lines.join('\n')}\n`);

    const created = await client.batches.create({
      input_file_id: file.id,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
      metadata: { purpose: 'round trip' },
    });
    expect(created.id).toMatch(/^batch_/);
    // Validation is a job on the workers: the answer comes at once, before any line is read.
    expect(created.status).toBe('validating');
    expect(created.in_progress_at).toBeNull();
    expect(created.metadata).toEqual({ purpose: 'round trip' });
    expect(created.request_counts?.total).toBe(0);

    const batch = await waitForStatus(client, created.id, ['completed', 'failed']);
    expect(batch.status).toBe('completed');
    expect(batch.request_counts).toEqual({ total: 300, completed: valid.size, failed: invalid.length });
    expect(batch.completed_at).toBeGreaterThanOrEqual(batch.created_at);
    expect(batch.in_progress_at).toBeGreaterThanOrEqual(batch.created_at);
    expect(batch.finalizing_at).toBeGreaterThanOrEqual(batch.in_progress_at!);
    expect(batch.completed_at).toBeGreaterThanOrEqual(batch.finalizing_at!);
    expect(batch.moa.cost_usd).toBeGreaterThan(0);

    const output = await download(client, batch.output_file_id);
    expect(output).toHaveLength(valid.size);
    expect(new Set(output.map((line) => line.custom_id))).toEqual(new Set(valid.keys()));
    for (const line of output) {
      expect(line.id).toMatch(/^batch_req_/);
      expect(line.error).toBeNull();
      expect(line.response?.status_code).toBe(200);
      const body = line.response!.body as unknown as OpenAI.Chat.Completions.ChatCompletion & {
        moa: { id: string };
      };
      expect(body.object).toBe('chat.completion');
      expect(body.model).toBe('three');
      expect(body.choices[0]!.message.content).toBeTruthy();
      expect(body.moa.id).toBe(line.response!.request_id);
    }
    // The answer joined to a custom_id is that item's own request's answer.
    for (const line of output.slice(0, 5)) {
      const job = await stack.get(line.response!.request_id);
      const body = line.response!.body as unknown as OpenAI.Chat.Completions.ChatCompletion;
      expect(job.output).toBe(body.choices[0]!.message.content);
      expect(job.layers[0]!.calls[0]!.output).toBeTruthy();
    }
    const requests = stack.fake.requests.filter((recorded) =>
      recorded.messages.some((message) => message.content === valid.get('request-3')),
    );
    expect(requests.length).toBeGreaterThan(0);

    const errors = await download(client, batch.error_file_id);
    expect(errors).toHaveLength(invalid.length);
    const codes = (list: { code: string }[]) => list.map((entry) => entry.code).sort();
    expect(codes(errors.map((line) => line.error!))).toEqual(codes(invalid));
    for (const entry of invalid.filter((item) => item.code !== 'duplicate_custom_id' && item.customId)) {
      expect(errors.filter((line) => line.custom_id === entry.customId)).toHaveLength(1);
    }
    expect(
      errors
        .filter((line) => line.error?.code === 'duplicate_custom_id')
        .every((line) => line.custom_id === 'request-1'),
    ).toBe(true);

    const listed = await client.batches.list({ limit: 10 });
    expect(listed.data.map((entry) => entry.id)).toContain(batch.id);

    // Where the files are: an input line, output lines (with a response) and error lines (without).
    const inputLine = lines[0]!;
    const outputText = (output[0]!.response!.body as unknown as OpenAI.Chat.Completions.ChatCompletion)
      .choices[0]!.message.content!;
    const held = {
      input: await keysHolding(stack.redis, stack.prefix, inputLine),
      output: await keysHolding(stack.redis, stack.prefix, '"response":{"status_code":200,'),
      errors: await keysHolding(
        stack.redis,
        stack.prefix,
        '"response":null,"error":{"code":"duplicate_custom_id"',
      ),
    };
    if (store === 'redis') {
      // The content is in the files' chunk lists.
      expect(held.input).toEqual([`${stack.prefix}:moa-file:${file.id}:chunks`]);
      expect(held.output).toEqual([`${stack.prefix}:moa-file:${batch.output_file_id}:chunks`]);
      expect(held.errors).toEqual([`${stack.prefix}:moa-file:${batch.error_file_id}:chunks`]);
    } else {
      // Redis holds the files' metadata only; the content is in MOA_FILES_DIR, the spool is gone.
      expect(held).toEqual({ input: [], output: [], errors: [] });
      expect(await stack.redis.keys(`${stack.prefix}:moa-file:*:chunks*`)).toEqual([]);
      const stored = readdirSync(join(stack.filesDir!, 'files')).sort();
      expect(stored).toEqual([file.id, batch.output_file_id!, batch.error_file_id!].sort());
      expect(readFileSync(join(stack.filesDir!, 'files', file.id), 'utf8')).toBe(`${lines.join('\n')}\n`);
      expect(readFileSync(join(stack.filesDir!, 'files', batch.output_file_id!), 'utf8')).toContain(
        outputText,
      );
      expect(readdirSync(join(stack.filesDir!, 'spool'))).toEqual([]);
    }
    expect(await stack.redis.hgetall(`${stack.prefix}:moa-file:${batch.output_file_id}`)).toMatchObject({
      complete: '1',
      lines: String(valid.size),
    });
  });

  it('accepts toFile uploads and paginates the batch list with after and limit', async () => {
    const ids: string[] = [];
    for (let index = 0; index < 3; index += 1) {
      const file = await client.files.create({
        file: await toFile(Buffer.from(`${validLine('only', `small ${index}`)}\n`), `small-${index}.jsonl`),
        purpose: 'batch',
      });
      const batch = await client.batches.create({
        input_file_id: file.id,
        endpoint: '/v1/chat/completions',
        completion_window: '24h',
      });
      ids.push(batch.id);
    }
    const first = await client.batches.list({ limit: 2 });
    expect(first.data.map((batch) => batch.id)).toEqual([ids[2], ids[1]]);
    expect(first.has_more).toBe(true);
    const second = await client.batches.list({ limit: 2, after: first.data[1]!.id });
    expect(second.data[0]!.id).toBe(ids[0]);
    const all: string[] = [];
    for await (const batch of client.batches.list({ limit: 2 })) all.push(batch.id);
    expect(all.slice(0, 3)).toEqual([ids[2], ids[1], ids[0]]);
    for (const id of ids) await waitForStatus(client, id, ['completed']);
  });

  it('fails a batch whose file is not JSONL or over the line limit, and refuses bad requests', async () => {
    const array = await client.files.create({
      file: await toFile(Buffer.from(JSON.stringify([{ instruction: 'hi' }], null, 2)), 'array.json'),
      purpose: 'batch',
    });
    const notJsonl = await client.batches.create({
      input_file_id: array.id,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
    });
    expect(notJsonl.status).toBe('validating');
    const failed = await waitForStatus(client, notJsonl.id, ['failed', 'in_progress', 'completed']);
    expect(failed.status).toBe('failed');
    expect(failed.errors?.data?.[0]?.code).toBe('invalid_file');
    expect(failed.failed_at).not.toBeNull();

    const many = await client.files.create({
      file: await toFile(
        Buffer.from(Array.from({ length: 1001 }, (_, index) => validLine(`x${index}`, 'p')).join('\n')),
        'many.jsonl',
      ),
      purpose: 'batch',
    });
    const overLimit = await client.batches.create({
      input_file_id: many.id,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
    });
    const tooMany = await waitForStatus(client, overLimit.id, ['failed', 'in_progress', 'completed']);
    expect(tooMany.status).toBe('failed');
    expect(tooMany.errors?.data?.[0]).toMatchObject({ code: 'too_many_requests' });
    expect(tooMany.request_counts?.total).toBe(0);

    await expect(
      client.batches.create({
        input_file_id: many.id,
        endpoint: '/v1/chat/completions',
        completion_window: '48h' as '24h',
      }),
    ).rejects.toMatchObject({ status: 400, param: 'completion_window' });
    await expect(
      client.batches.create({
        input_file_id: 'file-missing',
        endpoint: '/v1/chat/completions',
        completion_window: '24h',
      }),
    ).rejects.toMatchObject({ status: 404, param: 'input_file_id' });
    await expect(client.batches.retrieve('batch_unknown')).rejects.toMatchObject({ status: 404 });
    await expect(client.files.retrieve('file-unknown')).rejects.toMatchObject({ status: 404 });
    await expect(
      client.files.create({ file: await toFile(Buffer.from('x'), 'a.jsonl'), purpose: 'fine-tune' }),
    ).rejects.toMatchObject({ status: 400, param: 'purpose' });

    const big = Buffer.alloc(1024 * 1024 + 10, 'a');
    const response = await request(stack.app)
      .post('/v1/files')
      .field('purpose', 'batch')
      .attach('file', big, 'big.jsonl');
    expect(response.status).toBe(413);
    expect(response.body.error).toMatchObject({ code: 'file_too_large', type: 'invalid_request_error' });
  });

  it('answers 500 file_content_missing for a file whose content is not in the store, and fails its batch', async () => {
    const file = await client.files.create({
      file: await toFile(Buffer.from(`${validLine('a', 'gone')}\n`), 'gone.jsonl'),
      purpose: 'batch',
    });
    // What an API and workers with different MOA_FILES_DIR (or a lost volume) see: metadata without content.
    await stack.files.delete(file.id);
    const response = await request(stack.app).get(`/v1/files/${file.id}/content`);
    expect(response.status).toBe(500);
    expect(response.body.error).toMatchObject({
      code: 'file_content_missing',
      param: 'id',
      type: 'server_error',
    });
    expect(response.body.error.message).toMatch(/MOA_FILES_DIR/);
    // A batch of it fails its validation, saying why, rather than retrying for ever.
    const created = await client.batches.create({
      input_file_id: file.id,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
    });
    const failed = await waitForStatus(client, created.id, ['failed', 'completed']);
    expect(failed.status).toBe('failed');
    expect(failed.errors?.data?.[0]).toMatchObject({ code: 'file_not_found', param: 'input_file_id' });
    expect(failed.errors?.data?.[0]?.message).toMatch(/not in the file store/);
    // The metadata still answers; deleting the file works.
    expect((await client.files.retrieve(file.id)).bytes).toBeGreaterThan(0);
    expect((await client.files.delete(file.id)).deleted).toBe(true);
  });

  it('keeps batches in Redis: a brand-new API instance serves a batch another one created', async () => {
    const file = await client.files.create({
      file: await toFile(
        Buffer.from([validLine('a', 'first'), validLine('b', 'second')].join('\n')),
        'restart.jsonl',
      ),
      purpose: 'batch',
    });
    const created = await client.batches.create({
      input_file_id: file.id,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
    });
    const freshApp = createApp({
      queues: stack.queues,
      redis: stack.redis.duplicate(),
      files: stack.files,
      config: stack.config,
      logger: pino({ level: 'silent' }),
    });
    const deadline = Date.now() + 60_000;
    let batch: Batch;
    for (;;) {
      const response = await request(freshApp).get(`/v1/batches/${created.id}`);
      expect(response.status).toBe(200);
      batch = response.body as Batch;
      if (batch.status === 'completed' || Date.now() > deadline) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(batch.status).toBe('completed');
    expect(batch.request_counts).toEqual({ total: 2, completed: 2, failed: 0 });
    const content = await request(freshApp)
      .get(`/v1/files/${batch.output_file_id}/content`)
      .buffer(true)
      .parse((res, done) => {
        let text = '';
        res.on('data', (chunk: Buffer) => (text += chunk.toString()));
        res.on('end', () => done(null, text));
      });
    const ids = (content.body as string)
      .trim()
      .split('\n')
      .map((line) => (JSON.parse(line) as OutputLine).custom_id);
    expect(ids.sort()).toEqual(['a', 'b']);
    const listed = await request(freshApp).get('/v1/batches?limit=100');
    expect((listed.body as { data: { id: string }[] }).data.map((entry) => entry.id)).toContain(created.id);
    // Out-of-range limits name the bound they break, like the other parameters.
    for (const [path, message] of [
      ['/v1/batches?limit=0', 'must be at least 1'],
      ['/v1/batches?limit=101', 'must be at most 100'],
      ['/v1/batches?limit=2.5', 'must be a whole number'],
      ['/v1/files?limit=0', 'must be at least 1'],
      ['/v1/files?limit=10001', 'must be at most 10000'],
    ] as const) {
      const refused = await request(freshApp).get(path);
      expect(refused.status).toBe(400);
      expect(refused.body.error).toMatchObject({ param: 'limit', message: expect.stringContaining(message) });
    }
  });
});
