import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import OpenAI, {
  APIConnectionTimeoutError,
  APIUserAbortError,
  AuthenticationError,
  BadRequestError,
  InternalServerError,
  RateLimitError,
} from 'openai';
import type { ChatCompletionMessageParam } from 'openai/resources/chat/completions';
import { afterEach, describe, expect, it } from 'vitest';
import {
  countWindowTokens,
  createFakeProvider,
  type FakeProvider,
  type FakeProviderOptions,
} from './index.js';

const started: FakeProvider[] = [];

afterEach(async () => {
  await Promise.all(started.splice(0).map((provider) => provider.close()));
});

async function start(options: FakeProviderOptions = {}): Promise<FakeProvider> {
  const provider = await createFakeProvider(options);
  started.push(provider);
  return provider;
}

function clientFor(provider: FakeProvider, apiKey = 'test'): OpenAI {
  return new OpenAI({ baseURL: provider.url, apiKey, maxRetries: 0 });
}

/** Polls until `predicate` holds: the server learns of a client abort asynchronously. */
async function waitFor(predicate: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** The control endpoints live beside `/v1`, at the server root. */
function controlUrl(provider: FakeProvider, path: string): string {
  return new URL(`/__control/${path}`, provider.url).toString();
}

const messages: ChatCompletionMessageParam[] = [
  { role: 'system', content: 'You are terse.' },
  { role: 'user', content: 'Hello there' },
];

describe('createFakeProvider', () => {
  it('listens on loopback with a /v1 base URL', async () => {
    const provider = await start();
    expect(provider.url).toBe(`http://127.0.0.1:${provider.port}/v1`);
    expect(provider.port).toBeGreaterThan(0);
  });

  it('answers with a real chat.completion object and deterministic usage', async () => {
    const provider = await start();
    const completion = await clientFor(provider).chat.completions.create({ model: 'model-a', messages });

    const hash = createHash('sha256')
      .update('model-a' + JSON.stringify(messages))
      .digest('hex')
      .slice(0, 8);
    expect(completion.id).toMatch(/^chatcmpl-/);
    expect(completion.object).toBe('chat.completion');
    expect(completion.model).toBe('model-a');
    expect(completion.created).toBeGreaterThan(1_600_000_000);
    expect(completion.choices).toHaveLength(1);
    const [choice] = completion.choices;
    expect(choice?.index).toBe(0);
    expect(choice?.finish_reason).toBe('stop');
    expect(choice?.logprobs).toBeNull();
    expect(choice?.message.role).toBe('assistant');
    const content = choice?.message.content ?? '';
    expect(content.startsWith(`model-a answer ${hash}: `)).toBe(true);
    expect(content.split(' ')).toHaveLength(40);
    // ceil((14 + 11) / 4) + 4 per message
    expect(completion.usage).toEqual({ prompt_tokens: 15, completion_tokens: 40, total_tokens: 55 });
  });

  it('gives identical text for identical requests and different text for different ones', async () => {
    const provider = await start({ outputWords: 12 });
    const client = clientFor(provider);
    const text = async (model: string, input: ChatCompletionMessageParam[]) =>
      (await client.chat.completions.create({ model, messages: input })).choices[0]?.message.content;

    const first = await text('model-a', messages);
    expect(await text('model-a', messages)).toBe(first);
    expect(await text('model-b', messages)).not.toBe(first);
    expect(await text('model-a', [{ role: 'user', content: 'Something else' }])).not.toBe(first);
    expect(first?.split(' ')).toHaveLength(12);
  });

  it('caps the answer at max_tokens words with finish_reason length', async () => {
    const provider = await start();
    const client = clientFor(provider);
    const full = await client.chat.completions.create({ model: 'model-a', messages });
    const capped = await client.chat.completions.create({ model: 'model-a', messages, max_tokens: 7 });

    const content = capped.choices[0]?.message.content ?? '';
    expect(content.split(' ')).toHaveLength(7);
    expect(full.choices[0]?.message.content?.startsWith(content)).toBe(true);
    expect(capped.choices[0]?.finish_reason).toBe('length');
    expect(capped.usage?.completion_tokens).toBe(7);
    expect(provider.requests[1]?.maxTokens).toBe(7);
  });

  it('streams one delta per word that joins to the non-streamed text, then a usage chunk', async () => {
    const provider = await start({ tokenIntervalMs: 1 });
    const client = clientFor(provider);
    const plain = await client.chat.completions.create({ model: 'model-a', messages });
    const stream = await client.chat.completions.create({
      model: 'model-a',
      messages,
      stream: true,
      stream_options: { include_usage: true },
    });

    const chunks = [];
    for await (const chunk of stream) chunks.push(chunk);
    const withChoices = chunks.filter((chunk) => chunk.choices.length > 0);
    expect(chunks.every((chunk) => chunk.object === 'chat.completion.chunk')).toBe(true);
    expect(new Set(chunks.map((chunk) => chunk.id)).size).toBe(1);
    expect(withChoices[0]?.choices[0]?.delta).toEqual({ role: 'assistant', content: '' });
    const deltas = withChoices.map((chunk) => chunk.choices[0]?.delta.content ?? '');
    expect(deltas.join('')).toBe(plain.choices[0]?.message.content);
    expect(deltas.filter((delta) => delta !== '')).toHaveLength(40);
    expect(withChoices.at(-1)?.choices[0]?.finish_reason).toBe('stop');
    const last = chunks.at(-1);
    expect(last?.choices).toEqual([]);
    expect(last?.usage).toEqual(plain.usage);
    expect(provider.requests[1]).toMatchObject({ stream: true, status: 200 });
  });

  it('streams without a usage chunk unless include_usage is set, and honours max_tokens', async () => {
    const provider = await start();
    const stream = await clientFor(provider).chat.completions.create({
      model: 'model-a',
      messages,
      stream: true,
      max_tokens: 3,
    });
    const chunks = [];
    for await (const chunk of stream) chunks.push(chunk);
    expect(chunks.every((chunk) => chunk.choices.length === 1 && chunk.usage === undefined)).toBe(true);
    expect(chunks.map((chunk) => chunk.choices[0]?.delta.content ?? '').join('')).toBe(
      `model-a answer ${createHash('sha256')
        .update('model-a' + JSON.stringify(messages))
        .digest('hex')
        .slice(0, 8)}:`,
    );
    expect(chunks.at(-1)?.choices[0]?.finish_reason).toBe('length');
  });

  it('returns a scripted 429 as RateLimitError with readable retry-after headers', async () => {
    const provider = await start();
    provider.script('model-a', {
      status: 429,
      retryAfterSeconds: 3,
      retryAfterMs: 2500,
      message: 'slow down',
    });
    const client = clientFor(provider);

    const error = await client.chat.completions
      .create({ model: 'model-a', messages })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RateLimitError);
    const rateLimit = error as RateLimitError;
    expect(rateLimit.status).toBe(429);
    expect(rateLimit.headers.get('retry-after')).toBe('3');
    expect(rateLimit.headers.get('retry-after-ms')).toBe('2500');
    expect(rateLimit.message).toContain('slow down');
    expect(rateLimit.type).toBe('rate_limit_error');
    expect(rateLimit.code).toBe('rate_limit_exceeded');
    // One-shot: the next request succeeds.
    await expect(client.chat.completions.create({ model: 'model-a', messages })).resolves.toBeDefined();
    expect(provider.requests.map((request) => request.status)).toEqual([429, 200]);
  });

  it('returns a scripted 500 once, then succeeds', async () => {
    const provider = await start();
    provider.script('model-a', { status: 500 });
    const client = clientFor(provider);

    const error = await client.chat.completions
      .create({ model: 'model-a', messages })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InternalServerError);
    expect((error as InternalServerError).status).toBe(500);
    expect((error as InternalServerError).type).toBe('server_error');
    const completion = await client.chat.completions.create({ model: 'model-a', messages });
    expect(completion.choices[0]?.message.content).toMatch(/^model-a answer /);
  });

  it('returns scripted errors on streaming requests as plain HTTP errors before any SSE', async () => {
    const provider = await start();
    provider.script('model-a', { status: 503 });
    const error = await clientFor(provider)
      .chat.completions.create({ model: 'model-a', messages, stream: true })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InternalServerError);
    expect((error as InternalServerError).status).toBe(503);
  });

  it("consumes a model's own script before the '*' script, and answers with scripted content", async () => {
    const provider = await start();
    provider.script('*', { status: 503 });
    provider.script('model-a', { content: 'exactly  this\ntext' });
    const client = clientFor(provider);
    const ask = (model: string) =>
      client.chat.completions.create({ model, messages }).then(
        (completion) => completion.choices[0]?.message.content,
        (error: InternalServerError) => error.status,
      );

    expect(await ask('model-a')).toBe('exactly  this\ntext');
    expect(await ask('model-b')).toBe(503);
    expect(await ask('model-a')).toMatch(/^model-a answer /);

    provider.script('model-a', { content: 'streamed  as\nis ' });
    const stream = await client.chat.completions.create({ model: 'model-a', messages, stream: true });
    let joined = '';
    for await (const chunk of stream) joined += chunk.choices[0]?.delta.content ?? '';
    expect(joined).toBe('streamed  as\nis ');
  });

  it('applies a persistent behaviour until it is cleared', async () => {
    const provider = await start();
    const client = clientFor(provider);
    provider.setBehaviour('model-a', { failStatus: 502 });
    for (let i = 0; i < 2; i += 1) {
      await expect(client.chat.completions.create({ model: 'model-a', messages })).rejects.toBeInstanceOf(
        InternalServerError,
      );
    }
    provider.setBehaviour('model-a', { content: 'fixed' });
    const fixed = await client.chat.completions.create({ model: 'model-a', messages });
    expect(fixed.choices[0]?.message.content).toBe('fixed');
    expect(fixed.usage?.completion_tokens).toBe(1);
    provider.setBehaviour('model-a', undefined);
    const normal = await client.chat.completions.create({ model: 'model-a', messages });
    expect(normal.choices[0]?.message.content).toMatch(/^model-a answer /);
  });

  it('hangs until the client aborts, records 499 and keeps serving', async () => {
    const provider = await start();
    const client = clientFor(provider);
    provider.script('model-a', { hang: true }, { hang: true });

    const aborted = await client.chat.completions
      .create({ model: 'model-a', messages }, { signal: AbortSignal.timeout(150) })
      .catch((e: unknown) => e);
    expect(aborted).toBeInstanceOf(APIUserAbortError);
    const timedOut = await client.chat.completions
      .create({ model: 'model-a', messages, stream: true }, { timeout: 150 })
      .catch((e: unknown) => e);
    expect(timedOut).toBeInstanceOf(APIConnectionTimeoutError);

    await waitFor(() => provider.requests.every((request) => request.status === 499));
    expect(provider.requests).toHaveLength(2);
    expect(provider.requests[0]?.finishedAt).toBeGreaterThanOrEqual(
      provider.requests[0]?.receivedAt ?? Infinity,
    );
    const completion = await client.chat.completions.create({ model: 'model-a', messages });
    expect(completion.choices[0]?.finish_reason).toBe('stop');
  });

  it('holds requests until released, per model or all, then answers after the latency', async () => {
    const provider = await start();
    const client = clientFor(provider);
    provider.script('model-a', { hold: true, content: 'after release', latencyMs: 100 });
    provider.setBehaviour('model-b', { hold: true });
    const first = client.chat.completions.create({ model: 'model-a', messages });
    const second = client.chat.completions.create({ model: 'model-b', messages });
    await waitFor(() => provider.held() === 2);
    expect(provider.held('model-a')).toBe(1);
    expect(provider.requests.map((request) => request.finishedAt)).toEqual([undefined, undefined]);

    const releasedAt = performance.now();
    expect(provider.release('model-a')).toBe(1);
    expect((await first).choices[0]?.message.content).toBe('after release');
    // The latency counts from the release.
    expect(performance.now() - releasedAt).toBeGreaterThanOrEqual(100);
    // model-b is still held: releasing one model lets no other go.
    expect(provider.held()).toBe(1);
    expect(provider.requests.find((request) => request.model === 'model-b')?.finishedAt).toBeUndefined();

    expect(provider.release()).toBe(1);
    expect((await second).choices[0]?.finish_reason).toBe('stop');
    expect(provider.release()).toBe(0);
    // The behaviour persists: the next request to model-b is held again.
    const third = client.chat.completions.create({ model: 'model-b', messages, stream: true });
    await waitFor(() => provider.held('model-b') === 1);
    provider.reset(); // reset releases it, so nothing stays held into the next test
    let streamed = '';
    for await (const chunk of await third) streamed += chunk.choices[0]?.delta.content ?? '';
    expect(streamed).toMatch(/^model-b answer /);
  });

  it('stops holding a request whose client gives up, and records 499', async () => {
    const provider = await start();
    provider.setBehaviour('*', { hold: true });
    const controller = new AbortController();
    const pending = clientFor(provider)
      .chat.completions.create({ model: 'model-a', messages }, { signal: controller.signal })
      .catch((e: unknown) => e);
    await waitFor(() => provider.held() === 1);
    controller.abort();
    expect(await pending).toBeInstanceOf(APIUserAbortError);
    await waitFor(() => provider.requests[0]?.status === 499);
    expect(provider.held()).toBe(0);
    expect(provider.release()).toBe(0);
  });

  it('stops waiting and records 499 when the client leaves during the latency', async () => {
    const provider = await start({ defaultLatencyMs: 10_000 });
    const error = await clientFor(provider)
      .chat.completions.create({ model: 'model-a', messages }, { timeout: 100 })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(APIConnectionTimeoutError);
    await waitFor(() => provider.requests[0]?.status === 499);
  });

  it('closes promptly even with a hanging request open', async () => {
    const provider = await createFakeProvider();
    provider.setBehaviour('*', { hang: true });
    const pending = clientFor(provider)
      .chat.completions.create({ model: 'model-a', messages })
      .catch((e: unknown) => e);
    await waitFor(() => provider.requests.length === 1);

    await provider.close();
    expect(await pending).toBeInstanceOf(OpenAI.APIConnectionError);
    expect(provider.requests[0]?.status).toBe(499);
  });

  it('waits at least the per-model, scripted and behaviour latency', async () => {
    const provider = await start({ latencyMs: { 'slow-model': 150 } });
    const client = clientFor(provider);
    const timed = async (run: () => Promise<unknown>) => {
      const startedAt = performance.now();
      await run();
      return performance.now() - startedAt;
    };

    expect(
      await timed(() => client.chat.completions.create({ model: 'slow-model', messages })),
    ).toBeGreaterThanOrEqual(150);
    // Streaming: the latency comes before the first chunk, so before create() resolves.
    expect(
      await timed(() => client.chat.completions.create({ model: 'slow-model', messages, stream: true })),
    ).toBeGreaterThanOrEqual(150);
    provider.script('fast-model', { latencyMs: 120 });
    expect(
      await timed(() => client.chat.completions.create({ model: 'fast-model', messages })),
    ).toBeGreaterThanOrEqual(120);
    provider.setBehaviour('fast-model', { latencyMs: 80 });
    expect(
      await timed(() => client.chat.completions.create({ model: 'fast-model', messages })),
    ).toBeGreaterThanOrEqual(80);
  });

  it('rejects a wrong API key with 401 when requireApiKey is set', async () => {
    const provider = await start({ requireApiKey: 'secret' });

    const error = await clientFor(provider, 'wrong')
      .chat.completions.create({ model: 'model-a', messages })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AuthenticationError);
    expect((error as AuthenticationError).type).toBe('authentication_error');
    await expect(
      clientFor(provider, 'secret').chat.completions.create({ model: 'model-a', messages }),
    ).resolves.toBeDefined();
    expect(provider.requests.map(({ authorization, status }) => ({ authorization, status }))).toEqual([
      { authorization: 'Bearer wrong', status: 401 },
      { authorization: 'Bearer secret', status: 200 },
    ]);
  });

  it('records every request with its messages and outcome', async () => {
    const provider = await start();
    const before = Date.now();
    await clientFor(provider).chat.completions.create({
      model: 'model-a',
      messages: [...messages, { role: 'user', content: [{ type: 'text', text: 'parts' }] }],
      temperature: 0.2,
      max_tokens: 9,
    });

    expect(provider.requests).toHaveLength(1);
    const [recorded] = provider.requests;
    expect(recorded).toMatchObject({
      model: 'model-a',
      messages: [
        { role: 'system', content: 'You are terse.' },
        { role: 'user', content: 'Hello there' },
        { role: 'user', content: 'parts' },
      ],
      temperature: 0.2,
      maxTokens: 9,
      stream: false,
      authorization: 'Bearer test',
      status: 200,
    });
    expect(recorded?.receivedAt).toBeGreaterThanOrEqual(before);
    expect(recorded?.finishedAt).toBeGreaterThanOrEqual(recorded?.receivedAt ?? Infinity);

    provider.reset();
    expect(provider.requests).toHaveLength(0);
  });

  it('lists models seen and configured', async () => {
    const provider = await start({ latencyMs: { configured: 5 } });
    const client = clientFor(provider);
    await client.chat.completions.create({ model: 'seen', messages });
    const models = [];
    for await (const model of client.models.list()) models.push(model.id);
    expect(models).toEqual(['seen', 'configured']);
  });

  it('lists exactly the configured models, set by option, method or control endpoint', async () => {
    const provider = await start({ models: ['served-a', 'served-b'], requireApiKey: 'test' });
    const client = clientFor(provider);
    const list = async () => {
      const ids = [];
      for await (const model of client.models.list()) ids.push(model.id);
      return ids;
    };
    await client.chat.completions.create({ model: 'seen-but-not-listed', messages });
    expect(await list()).toEqual(['served-a', 'served-b']);

    provider.setModels(['other']);
    expect(await list()).toEqual(['other']);

    const control = (body: unknown) =>
      fetch(controlUrl(provider, 'models'), {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    expect((await control({ models: ['from-control', 'second'] })).status).toBe(200);
    expect(await list()).toEqual(['from-control', 'second']);
    expect((await control({ models: [''] })).status).toBe(400);
    expect((await control({ models: 'nope' })).status).toBe(400);
    expect(await list()).toEqual(['from-control', 'second']);
    expect((await control({ models: null })).status).toBe(200);
    expect(await list()).toEqual(['seen-but-not-listed']);

    // reset() goes back to the option's list; the list needs the key like every /v1 route.
    provider.reset();
    expect(await list()).toEqual(['served-a', 'served-b']);
    expect((await fetch(`${provider.url}/models`)).status).toBe(401);
    expect(() => provider.setModels([42 as unknown as string])).toThrow(TypeError);
  });

  it('answers 404 for unknown routes and 400 for bad JSON with OpenAI error objects', async () => {
    const provider = await start();
    const unknown = await fetch(`${provider.url}/nothing-here`);
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toEqual({
      error: {
        message: 'Unknown request URL: GET /v1/nothing-here.',
        type: 'not_found_error',
        param: null,
        code: null,
      },
    });
    const badJson = await fetch(`${provider.url}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"model": ',
    });
    expect(badJson.status).toBe(400);
    expect(((await badJson.json()) as { error: { type: string } }).error.type).toBe('invalid_request_error');
    const noMessages = await fetch(`${provider.url}/chat/completions`, {
      method: 'POST',
      body: JSON.stringify({ model: 'model-a' }),
    });
    expect(noMessages.status).toBe(400);
    expect(provider.requests).toHaveLength(0);
  });

  it('is driven over HTTP by the control endpoints', async () => {
    const provider = await start();
    const client = clientFor(provider);
    const post = (path: string, body: unknown) =>
      fetch(controlUrl(provider, path), { method: 'POST', body: JSON.stringify(body) });

    expect(
      (await post('script', { model: 'model-a', actions: [{ status: 429, retryAfterSeconds: 1 }] })).status,
    ).toBe(200);
    const limited = await client.chat.completions
      .create({ model: 'model-a', messages })
      .catch((e: unknown) => e);
    expect((limited as RateLimitError).headers.get('retry-after')).toBe('1');

    expect((await post('behaviour', { model: 'model-a', behaviour: { content: 'controlled' } })).status).toBe(
      200,
    );
    const controlled = await client.chat.completions.create({ model: 'model-a', messages });
    expect(controlled.choices[0]?.message.content).toBe('controlled');

    const recorded = (await (await fetch(controlUrl(provider, 'requests'))).json()) as { status: number }[];
    expect(recorded.map((request) => request.status)).toEqual([429, 200]);

    expect((await post('script', { model: 'model-a', actions: [{ status: 200 }] })).status).toBe(400);
    expect((await post('behaviour', { behaviour: {} })).status).toBe(400);

    expect((await post('script', { model: 'model-a', actions: [{ hold: true }] })).status).toBe(200);
    const held = client.chat.completions.create({ model: 'model-a', messages });
    await waitFor(() => provider.held() === 1);
    expect(await (await post('release', { model: 'model-b' })).json()).toEqual({ released: 0 });
    expect(await (await post('release', {})).json()).toEqual({ released: 1 });
    expect((await held).choices[0]?.finish_reason).toBe('stop');
    expect((await post('release', { model: 1 })).status).toBe(400);

    expect((await post('reset', {})).status).toBe(200);
    expect(provider.requests).toHaveLength(0);
    const normal = await client.chat.completions.create({ model: 'model-a', messages });
    expect(normal.choices[0]?.message.content).toMatch(/^model-a answer /);
  });

  it("refuses a prompt over a model's context window with OpenAI's 400 context_length_exceeded", async () => {
    const provider = await start({ contextWindows: { small: 60 }, outputWords: 5 });
    const client = clientFor(provider);
    const short: ChatCompletionMessageParam[] = [{ role: 'user', content: 'hello world' }];
    const long: ChatCompletionMessageParam[] = [{ role: 'user', content: 'apple river '.repeat(40) }];
    const promptTokens = countWindowTokens([{ role: 'user', content: 'hello world' }]);
    expect(promptTokens).toBe(2 + 3 + 3);

    // Fits: the prompt plus max_tokens is within the window.
    const fits = await client.chat.completions.create({ model: 'small', messages: short, max_tokens: 50 });
    expect(fits.choices[0]?.message.content).toMatch(/^small answer /);
    // Over: the window counts max_tokens too.
    const refusal = await client.chat.completions
      .create({ model: 'small', messages: short, max_tokens: 60 - promptTokens + 1 })
      .catch((error: unknown) => error);
    expect(refusal).toBeInstanceOf(BadRequestError);
    expect((refusal as BadRequestError).error).toEqual({
      message: expect.stringMatching(
        /^This model's maximum context length is 60 tokens\. However, you requested 61 tokens/,
      ),
      type: 'invalid_request_error',
      param: 'messages',
      code: 'context_length_exceeded',
    });
    // A refusal comes before any script: the scripted answer is still there for the next request.
    provider.script('small', { content: 'scripted' });
    await expect(client.chat.completions.create({ model: 'small', messages: long })).rejects.toBeInstanceOf(
      BadRequestError,
    );
    const scripted = await client.chat.completions.create({ model: 'small', messages: short });
    expect(scripted.choices[0]?.message.content).toBe('scripted');
    // Other models take any prompt; a window set by method is lifted by undefined and by reset().
    await client.chat.completions.create({ model: 'other', messages: long });
    provider.setContextWindow('other', 5);
    await expect(client.chat.completions.create({ model: 'other', messages: short })).rejects.toBeInstanceOf(
      BadRequestError,
    );
    provider.setContextWindow('other', undefined);
    await client.chat.completions.create({ model: 'other', messages: short });
    provider.setContextWindow('small', 1000);
    await client.chat.completions.create({ model: 'small', messages: long });
    provider.reset();
    await expect(client.chat.completions.create({ model: 'small', messages: long })).rejects.toBeInstanceOf(
      BadRequestError,
    );
    expect(provider.requests.map((request) => request.status)).toEqual([400]);
    // Over HTTP, for a provider in another process.
    const control = (body: unknown) =>
      fetch(controlUrl(provider, 'context-window'), {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    expect((await control({ model: 'small', tokens: null })).status).toBe(200);
    await client.chat.completions.create({ model: 'small', messages: long });
    expect((await control({ model: 'small', tokens: 5 })).status).toBe(200);
    await expect(client.chat.completions.create({ model: 'small', messages: short })).rejects.toBeInstanceOf(
      BadRequestError,
    );
    expect((await control({ model: 'small', tokens: 1.5 })).status).toBe(400);
    expect((await control({ model: 'small', tokens: 'many' })).status).toBe(400);
  });

  it('rejects invalid options and scripts', async () => {
    await expect(createFakeProvider({ outputWords: -1 })).rejects.toThrow(RangeError);
    await expect(createFakeProvider({ contextWindows: { small: 0 } })).rejects.toThrow(RangeError);
    const provider = await start();
    expect(() => provider.script('model-a', { status: 200 })).toThrow(/status/);
  });
});

describe('main.ts', () => {
  it('runs as a process, serves requests and exits 0 on SIGTERM', async () => {
    const mainPath = fileURLToPath(new URL('./main.ts', import.meta.url));
    const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));
    const child = spawn(
      process.execPath,
      ['--conditions=development', '--import', 'tsx', mainPath, '--port', '0', '--output-words', '5'],
      { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stderr = '';
    child.stderr.on('data', (data: Buffer) => (stderr += data.toString()));
    const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
    try {
      const lines = createInterface({ input: child.stdout });
      const [firstLine] = (await Promise.race([
        once(lines, 'line'),
        exited.then(([code]) => {
          throw new Error(`main.ts exited with ${code} before listening: ${stderr}`);
        }),
      ])) as [string];
      const match = /^fake provider listening on (http:\/\/127\.0\.0\.1:\d+\/v1)$/.exec(firstLine);
      expect(match, firstLine).not.toBeNull();

      const client = new OpenAI({ baseURL: match?.[1], apiKey: 'test', maxRetries: 0 });
      const completion = await client.chat.completions.create({ model: 'model-a', messages });
      expect(completion.usage?.completion_tokens).toBe(5);

      child.kill('SIGTERM');
      const [code, signal] = await exited;
      expect({ code, signal, stderr }).toEqual({ code: 0, signal: null, stderr: '' });
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
  });
});
