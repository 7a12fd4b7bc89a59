import OpenAI, { toFile } from 'openai';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startMoaStack, type MoaStack } from '../support/moa-stack.js';

const MESSAGES = [{ role: 'user' as const, content: 'What is a mixture of agents?' }];

/** The openai SDK (v6) as a new user drives it: chat, streaming, files, batches, errors and its retries. */
describe('openai SDK', () => {
  let stack: MoaStack;
  let baseURL: string;
  let client: OpenAI;

  beforeAll(async () => {
    stack = await startMoaStack({ name: 'clients-openai', redisUrl: inject('redisUrl'), workers: 1 });
    // A deterministic failure: the dead model's provider refuses (a 4xx is not retried).
    stack.fake.setBehaviour('dead', { failStatus: 400 });
    baseURL = `${await stack.listen()}/v1`;
    // The SDK's defaults (maxRetries: 2), as a new user has them.
    client = new OpenAI({ baseURL, apiKey: 'unused' });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('lists the presets as models', async () => {
    const ids: string[] = [];
    for await (const model of client.models.list()) ids.push(model.id);
    expect(ids).toEqual(expect.arrayContaining(['three', 'all-dead']));
  });

  it('chat.completions.create: the answer, finish_reason, usage and the moa extension', async () => {
    const completion = await client.chat.completions.create({ model: 'three', messages: MESSAGES });
    expect(completion.object).toBe('chat.completion');
    expect(completion.choices[0]?.message.content?.length).toBeGreaterThan(0);
    expect(completion.choices[0]?.finish_reason).toBe('stop');
    expect(completion.usage?.total_tokens).toBeGreaterThan(0);
    expect((completion as unknown as { moa: { layers: unknown[] } }).moa.layers).toHaveLength(3);
    const cut = await client.chat.completions.create({ model: 'three', messages: MESSAGES, max_tokens: 8 });
    expect(cut.choices[0]?.finish_reason).toBe('length');
  });

  it('chat.completions.stream: deltas make up the final message, usage comes last', async () => {
    const stream = client.chat.completions.stream({
      model: 'three',
      messages: MESSAGES,
      stream_options: { include_usage: true },
    });
    let deltas = '';
    stream.on('content', (delta) => {
      deltas += delta;
    });
    const final = await stream.finalChatCompletion();
    expect(final.choices[0]?.message.content).toBe(deltas);
    expect(final.choices[0]?.finish_reason).toBe('stop');
    expect(final.usage?.total_tokens).toBeGreaterThan(0);
  });

  it('files: upload, retrieve, content and list (purpose, limit, order)', async () => {
    const uploaded = [];
    for (const name of ['a.jsonl', 'b.jsonl']) {
      uploaded.push(
        await client.files.create({ file: await toFile(Buffer.from('{}\n'), name), purpose: 'batch' }),
      );
    }
    expect(await client.files.retrieve(uploaded[0]!.id)).toMatchObject({
      filename: 'a.jsonl',
      purpose: 'batch',
    });
    expect(await (await client.files.content(uploaded[1]!.id)).text()).toBe('{}\n');
    const listed: string[] = [];
    for await (const file of client.files.list({ purpose: 'batch', limit: 1, order: 'asc' }))
      listed.push(file.id);
    expect(listed).toEqual(expect.arrayContaining(uploaded.map((file) => file.id)));
    const newest = await client.files.list({ limit: 1, order: 'desc' });
    expect(newest.data).toHaveLength(1);
  });

  it('batches: a chat completions batch runs, and its output lines are chat completions', async () => {
    const lines = ['one', 'two'].map((customId) =>
      JSON.stringify({
        custom_id: customId,
        method: 'POST',
        url: '/v1/chat/completions',
        body: { model: 'three', messages: [{ role: 'user', content: `Question ${customId}` }] },
      }),
    );
    const file = await client.files.create({
      file: await toFile(Buffer.from(`${lines.join('\n')}\n`), 'batch.jsonl'),
      purpose: 'batch',
    });
    let batch = await client.batches.create({
      input_file_id: file.id,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
    });
    while (!['completed', 'failed', 'expired', 'cancelled'].includes(batch.status)) {
      await new Promise((resolve) => setTimeout(resolve, 200));
      batch = await client.batches.retrieve(batch.id);
    }
    expect(batch.status).toBe('completed');
    expect(batch.request_counts).toEqual({ total: 2, completed: 2, failed: 0 });
    const output = (await (await client.files.content(batch.output_file_id!)).text())
      .trim()
      .split('\n')
      .map(
        (line) =>
          JSON.parse(line) as {
            custom_id: string;
            response: { status_code: number; body: OpenAI.ChatCompletion };
          },
      );
    expect(output.map((line) => line.custom_id).sort()).toEqual(['one', 'two']);
    for (const line of output) {
      expect(line.response.status_code).toBe(200);
      expect(line.response.body.object).toBe('chat.completion');
    }
  });

  it('batches: a /v1/responses batch runs, and its output lines are responses', async () => {
    const lines = [
      JSON.stringify({
        custom_id: 'plain',
        method: 'POST',
        url: '/v1/responses',
        body: { model: 'three', instructions: 'Be brief.', input: 'Question one' },
      }),
      JSON.stringify({
        custom_id: 'cut',
        method: 'POST',
        url: '/v1/responses',
        body: {
          model: 'three',
          input: [{ role: 'user', content: [{ type: 'input_text', text: 'Question two' }] }],
          max_output_tokens: 4,
          metadata: { line: '2' },
        },
      }),
      JSON.stringify({
        custom_id: 'refused',
        method: 'POST',
        url: '/v1/responses',
        body: { model: 'three', input: 'Question three', previous_response_id: 'resp_1' },
      }),
    ];
    const file = await client.files.create({
      file: await toFile(Buffer.from(`${lines.join('\n')}\n`), 'responses.jsonl'),
      purpose: 'batch',
    });
    let batch = await client.batches.create({
      input_file_id: file.id,
      endpoint: '/v1/responses',
      completion_window: '24h',
    });
    while (!['completed', 'failed', 'expired', 'cancelled'].includes(batch.status)) {
      await new Promise((resolve) => setTimeout(resolve, 200));
      batch = await client.batches.retrieve(batch.id);
    }
    expect(batch).toMatchObject({ status: 'completed', endpoint: '/v1/responses' });
    expect(batch.request_counts).toEqual({ total: 3, completed: 2, failed: 1 });
    const output = new Map(
      (await (await client.files.content(batch.output_file_id!)).text())
        .trim()
        .split('\n')
        .map(
          (line) => JSON.parse(line) as { custom_id: string; response: { body: OpenAI.Responses.Response } },
        )
        .map((line) => [line.custom_id, line.response.body]),
    );
    expect(output.get('plain')).toMatchObject({
      object: 'response',
      status: 'completed',
      instructions: 'Be brief.',
    });
    expect(output.get('cut')).toMatchObject({
      status: 'incomplete',
      incomplete_details: { reason: 'max_output_tokens' },
      metadata: { line: '2' },
    });
    const errors = (await (await client.files.content(batch.error_file_id!)).text()).trim().split('\n');
    expect(errors.map((line) => JSON.parse(line) as unknown)).toEqual([
      expect.objectContaining({
        custom_id: 'refused',
        error: expect.objectContaining({ code: 'unsupported_parameter' }),
      }),
    ]);
  });

  it('error classes: 400, 404 and a failed run (502) that the default retries do not run again', async () => {
    const invalid = await client.chat.completions
      .create({ model: 'three', messages: MESSAGES, temperature: 5 })
      .catch((caught: unknown) => caught);
    expect(invalid).toBeInstanceOf(OpenAI.BadRequestError);
    expect(invalid).toMatchObject({ param: 'temperature', code: 'invalid_value' });
    const unsupported = await client.chat.completions
      .create({ model: 'three', messages: MESSAGES, n: 2 })
      .catch((caught: unknown) => caught);
    expect(unsupported).toMatchObject({ status: 400, code: 'unsupported_parameter', param: 'n' });
    const missing = await client.chat.completions
      .create({ model: 'nope', messages: MESSAGES })
      .catch((caught: unknown) => caught);
    expect(missing).toBeInstanceOf(OpenAI.NotFoundError);
    expect(missing).toMatchObject({ code: 'model_not_found' });

    stack.fake.requests.length = 0;
    const failed = await client.chat.completions
      .create({ model: 'all-dead', messages: MESSAGES })
      .catch((caught: unknown) => caught);
    expect(failed).toBeInstanceOf(OpenAI.InternalServerError);
    expect(failed).toMatchObject({ status: 502, code: 'too_few_proposers' });
    expect((failed as InstanceType<typeof OpenAI.APIError>).headers?.get('x-should-retry')).toBe('false');
    // Exactly one MoA run: its two proposer calls; the SDK's maxRetries: 2 did not run it again.
    expect(stack.fake.requests).toHaveLength(2);
  });
});
