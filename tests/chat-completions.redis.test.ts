import OpenAI, { NotFoundError, APIError } from 'openai';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startMoaStack, type MoaStack } from './support/moa-stack.js';

const MESSAGES = [{ role: 'user' as const, content: 'Write a haiku about queues.' }];

describe('OpenAI-compatible chat completions through the queue', () => {
  let stack: MoaStack;
  let client: OpenAI;
  let baseUrl: string;

  beforeAll(async () => {
    stack = await startMoaStack({
      name: 'chat',
      redisUrl: inject('redisUrl'),
      workers: 2,
      fake: { tokenIntervalMs: 2 },
    });
    stack.fake.setBehaviour('dead', { failStatus: 400 });
    baseUrl = await stack.listen();
    client = new OpenAI({ baseURL: `${baseUrl}/v1`, apiKey: 'unused', maxRetries: 0 });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('lists presets as models', async () => {
    const models = await client.models.list();
    expect(models.data.map((model) => model.id)).toEqual(
      expect.arrayContaining(['three', 'one-dead', 'all-dead']),
    );
  });

  it('answers a chat.completion whose usage sums every call, with the per-layer breakdown', async () => {
    const completion = await client.chat.completions.create({ model: 'three', messages: MESSAGES });
    expect(completion.object).toBe('chat.completion');
    expect(completion.model).toBe('three');
    const moa = (
      completion as unknown as {
        moa: {
          id: string;
          layers: {
            calls: { usage: { prompt_tokens: number; completion_tokens: number }; output: string }[];
          }[];
        };
      }
    ).moa;
    expect(moa.layers).toHaveLength(3);
    const calls = moa.layers.flatMap((layer) => layer.calls);
    expect(calls).toHaveLength(7);
    expect(completion.usage).toEqual({
      prompt_tokens: calls.reduce((sum, call) => sum + call.usage.prompt_tokens, 0),
      completion_tokens: calls.reduce((sum, call) => sum + call.usage.completion_tokens, 0),
      total_tokens: calls.reduce(
        (sum, call) => sum + call.usage.prompt_tokens + call.usage.completion_tokens,
        0,
      ),
    });
    expect(completion.choices[0]!.message.content).toBe(moa.layers[2]!.calls[0]!.output);
    expect(completion.id).toBe(`chatcmpl-${moa.id}`);
    expect(moa).not.toHaveProperty('output');
  });

  it('streams the aggregator token by token; the streamed text equals the non-streamed text', async () => {
    const plain = await client.chat.completions.create({ model: 'three', messages: MESSAGES });
    const providerRequestsBefore = stack.fake.requests.length;
    const stream = await client.chat.completions.create({
      model: 'three',
      messages: MESSAGES,
      stream: true,
      stream_options: { include_usage: true },
    });
    const deltas: string[] = [];
    let usage: OpenAI.CompletionUsage | undefined | null;
    let finish: string | null | undefined;
    for await (const chunk of stream) {
      expect(chunk.object).toBe('chat.completion.chunk');
      const content = chunk.choices[0]?.delta.content;
      if (content) deltas.push(content);
      if (chunk.choices[0]?.finish_reason) finish = chunk.choices[0].finish_reason;
      if (chunk.usage) usage = chunk.usage;
    }
    expect(deltas.join('')).toBe(plain.choices[0]!.message.content);
    // One chunk per provider delta: the fake streams one word per delta.
    expect(deltas.length).toBe(plain.choices[0]!.message.content!.split(' ').length);
    expect(finish).toBe('stop');
    expect(usage).toEqual(plain.usage);
    const aggregatorRequest = stack.fake.requests
      .slice(providerRequestsBefore)
      .find((request) => request.model === 'aggregator');
    expect(aggregatorRequest?.stream).toBe(true);
  });

  it('an unknown model is a 404 model_not_found; bad input is a 400 naming the field', async () => {
    const error = await client.chat.completions
      .create({ model: 'nope', messages: MESSAGES })
      .catch((caught) => caught);
    expect(error).toBeInstanceOf(NotFoundError);
    expect(error.code).toBe('model_not_found');
    const bad = await client.chat.completions
      .create({ model: 'three', messages: [{ role: 'robot' as 'user', content: 'x' }] })
      .catch((caught) => caught);
    expect(bad.status).toBe(400);
    expect(bad.param).toBe('messages[0].role');
  });

  it('a failed request comes back as an OpenAI error object', async () => {
    const error = await client.chat.completions
      .create({ model: 'all-dead', messages: MESSAGES })
      .catch((caught) => caught);
    expect(error).toBeInstanceOf(APIError);
    expect(error.status).toBe(502);
    expect(error.code).toBe('too_few_proposers');
  });

  it('a client that disconnects does not stop the job', async () => {
    const controller = new AbortController();
    const response = await fetch(`${baseUrl}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'three', messages: MESSAGES, stream: true }),
      signal: controller.signal,
    });
    const jobId = response.headers.get('x-moa-job-id')!;
    expect(jobId).toMatch(/^job_/);
    const reader = response.body!.getReader();
    await reader.read();
    controller.abort();
    const job = await stack.waitFor(jobId);
    expect(job.status).toBe('completed');
    expect(job.output).toBeTruthy();
  });

  it('GET /v1/jobs/{id}/events streams layer progress, then done', async () => {
    const created = await stack.submit({ preset: 'three', messages: MESSAGES });
    const response = await fetch(`${baseUrl}/v1/jobs/${created.id}/events`);
    expect(response.headers.get('content-type')).toContain('text/event-stream');
    const text = await response.text();
    const events = text
      .split('\n\n')
      .map((block) => /^data: (.*)$/m.exec(block)?.[1])
      .filter((data): data is string => Boolean(data))
      .map((data) => JSON.parse(data) as { type: string; layer?: number });
    expect(events.map((event) => `${event.type}${event.layer ?? ''}`)).toEqual([
      'layer_started1',
      'layer_finished1',
      'layer_started2',
      'layer_finished2',
      'layer_started3',
      'layer_finished3',
      'done',
    ]);
    // A late subscriber replays the whole story.
    const again = await (await fetch(`${baseUrl}/v1/jobs/${created.id}/events`)).text();
    expect(again).toContain('event: done');
    expect((await fetch(`${baseUrl}/v1/jobs/job_missing/events`)).status).toBe(404);
  });
});
