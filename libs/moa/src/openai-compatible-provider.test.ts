import { afterEach, describe, it, expect } from 'vitest';
import {
  countPromptTokens,
  createFakeProvider,
  type FakeProvider,
  type FakeProviderOptions,
} from '@moa-queue/fake-provider';
import type { ChatRequest } from './chat-model.js';
import { AuthenticationError } from './errors/authentication-error.js';
import { ProviderConnectionError } from './errors/connection-error.js';
import { InvalidRequestError } from './errors/invalid-request-error.js';
import { ModelNotFoundError } from './errors/not-found-error.js';
import { ProviderError } from './errors/provider-error.js';
import { ProviderRateLimitError } from './errors/rate-limit-error.js';
import { ProviderServerError } from './errors/server-error.js';
import { ProviderTimeoutError } from './errors/timeout-error.js';
import {
  createOpenAICompatibleProvider,
  type OpenAICompatibleProviderOptions,
} from './openai-compatible-provider.js';
import type { ChatMessage } from './types.js';

const started: FakeProvider[] = [];

afterEach(async () => {
  await Promise.all(started.splice(0).map((fake) => fake.close()));
});

async function startFake(options: FakeProviderOptions = {}): Promise<FakeProvider> {
  const fake = await createFakeProvider(options);
  started.push(fake);
  return fake;
}

function adapterFor(fake: FakeProvider, options: Partial<OpenAICompatibleProviderOptions> = {}) {
  return createOpenAICompatibleProvider({ name: 'fake', baseURL: fake.url, apiKey: 'sk-test', ...options });
}

const messages: ChatMessage[] = [
  { role: 'system', content: 'You are terse.' },
  { role: 'user', content: 'Say hello to the world' },
];

function request(overrides: Partial<ChatRequest> = {}): ChatRequest {
  return { model: 'org/model-7b', messages, temperature: 0.4, maxTokens: 100, ...overrides };
}

/** Resolves with what the promise rejected with; fails the test if it fulfilled. */
async function rejectionOf(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected the call to fail');
}

describe('createOpenAICompatibleProvider', () => {
  it('maps a completion to output, usage and finishReason', async () => {
    const fake = await startFake();
    fake.script('org/model-7b', { content: 'hello there world' });
    const model = adapterFor(fake);
    expect(model.provider).toBe('fake');
    const result = await model.complete(request());
    expect(result).toEqual({
      output: 'hello there world',
      usage: { promptTokens: countPromptTokens(messages), completionTokens: 3 },
      finishReason: 'stop',
    });
  });

  it("sends the provider's model id, the messages and the sampling settings", async () => {
    const fake = await startFake();
    await adapterFor(fake).complete(request());
    expect(fake.requests).toHaveLength(1);
    expect(fake.requests[0]).toMatchObject({
      model: 'org/model-7b',
      messages,
      temperature: 0.4,
      maxTokens: 100,
      stream: false,
    });
  });

  it("reports 'length' when max_tokens cut the answer", async () => {
    const fake = await startFake({ outputWords: 40 });
    const result = await adapterFor(fake).complete(request({ maxTokens: 5 }));
    expect(result.finishReason).toBe('length');
    expect(result.usage.completionTokens).toBe(5);
    expect(result.output.split(' ')).toHaveLength(5);
  });

  it('sends the API key as a Bearer header', async () => {
    const fake = await startFake();
    await adapterFor(fake, { apiKey: 'sk-secret-123' }).complete(request());
    expect(fake.requests[0]?.authorization).toBe('Bearer sk-secret-123');
  });

  it('streams deltas whose join is the output, with usage filled', async () => {
    const fake = await startFake({ outputWords: 12 });
    const deltas: string[] = [];
    const result = await adapterFor(fake).complete(request({ onDelta: (text) => deltas.push(text) }));
    expect(fake.requests[0]?.stream).toBe(true);
    expect(deltas.length).toBeGreaterThan(1);
    expect(deltas.join('')).toBe(result.output);
    expect(result.output.split(' ')).toHaveLength(12);
    expect(result.usage).toEqual({ promptTokens: countPromptTokens(messages), completionTokens: 12 });
    expect(result.finishReason).toBe('stop');
  });

  it('streams the same answer as a plain completion of the same request', async () => {
    const fake = await startFake();
    const plain = await adapterFor(fake).complete(request());
    const streamed = await adapterFor(fake).complete(request({ onDelta: () => {} }));
    expect(streamed).toEqual(plain);
  });

  it('maps a 429 with retry-after 2 to ProviderRateLimitError with retryAfterMs 2000', async () => {
    const fake = await startFake();
    fake.script('org/model-7b', { status: 429, retryAfterSeconds: 2 });
    const error = await rejectionOf(adapterFor(fake).complete(request()));
    expect(error).toBeInstanceOf(ProviderRateLimitError);
    expect(error).toMatchObject({
      status: 429,
      retryAfterMs: 2000,
      retryable: true,
      code: 'rate_limit_exceeded',
    });
    // No SDK retries: the one request reached the server once.
    expect(fake.requests).toHaveLength(1);
  });

  it('reads retry-after-ms', async () => {
    const fake = await startFake();
    fake.script('org/model-7b', { status: 429, retryAfterMs: 350 });
    const error = await rejectionOf(adapterFor(fake).complete(request()));
    expect(error).toMatchObject({ retryAfterMs: 350 });
  });

  it('maps a 500 to a retryable ProviderServerError without retrying it itself', async () => {
    const fake = await startFake();
    fake.script('org/model-7b', { status: 500, message: 'kaput' });
    const error = await rejectionOf(adapterFor(fake).complete(request()));
    expect(error).toBeInstanceOf(ProviderServerError);
    expect(error).toMatchObject({ status: 500, retryable: true, type: 'server_error' });
    expect((error as Error).message).toContain('kaput');
    expect((error as Error).message).toContain('fake');
    expect(fake.requests).toHaveLength(1);
  });

  it('maps a 503 to ProviderServerError and a 404 to ModelNotFoundError', async () => {
    const fake = await startFake();
    fake.script('org/model-7b', { status: 503 }, { status: 404 });
    const model = adapterFor(fake);
    expect(await rejectionOf(model.complete(request()))).toBeInstanceOf(ProviderServerError);
    expect(await rejectionOf(model.complete(request()))).toBeInstanceOf(ModelNotFoundError);
  });

  it('maps a 400 to InvalidRequestError', async () => {
    const fake = await startFake();
    fake.script('org/model-7b', { status: 400, message: 'bad temperature' });
    const error = await rejectionOf(adapterFor(fake).complete(request()));
    expect(error).toBeInstanceOf(InvalidRequestError);
    expect(error).toMatchObject({ status: 400, retryable: false });
    expect((error as Error).message).toContain('bad temperature');
  });

  it('maps a 401 to AuthenticationError', async () => {
    const fake = await startFake();
    fake.script('org/model-7b', { status: 401 });
    const error = await rejectionOf(adapterFor(fake).complete(request()));
    expect(error).toBeInstanceOf(AuthenticationError);
    expect(error).toMatchObject({ status: 401, retryable: false, type: 'authentication_error' });
  });

  it('maps a wrong key rejected by the server to AuthenticationError', async () => {
    const fake = await startFake({ requireApiKey: 'the-right-key' });
    const error = await rejectionOf(adapterFor(fake, { apiKey: 'a-wrong-key' }).complete(request()));
    expect(error).toBeInstanceOf(AuthenticationError);
    const ok = await adapterFor(fake, { apiKey: 'the-right-key' }).complete(request());
    expect(ok.output.length).toBeGreaterThan(0);
  });

  it('maps a 500 on a streamed call to ProviderServerError', async () => {
    const fake = await startFake();
    fake.script('org/model-7b', { status: 500 });
    const deltas: string[] = [];
    const error = await rejectionOf(
      adapterFor(fake).complete(request({ onDelta: (text) => deltas.push(text) })),
    );
    expect(error).toBeInstanceOf(ProviderServerError);
    expect(deltas).toEqual([]);
  });

  it('turns a hang past timeoutMs into ProviderTimeoutError', async () => {
    const fake = await startFake();
    fake.script('org/model-7b', { hang: true });
    const startedAt = Date.now();
    const error = await rejectionOf(adapterFor(fake, { timeoutMs: 200 }).complete(request()));
    expect(error).toBeInstanceOf(ProviderTimeoutError);
    expect(error).toMatchObject({ type: 'timeout_error', retryable: true });
    expect(Date.now() - startedAt).toBeGreaterThanOrEqual(190);
  });

  it("rejects with the signal's reason, not a ProviderError, when a hang is aborted", async () => {
    const fake = await startFake();
    fake.script('org/model-7b', { hang: true });
    const controller = new AbortController();
    const reason = new Error('the user cancelled');
    setTimeout(() => controller.abort(reason), 50);
    const error = await rejectionOf(adapterFor(fake).complete(request({ signal: controller.signal })));
    expect(error).toBe(reason);
    expect(error).not.toBeInstanceOf(ProviderError);
  });

  it("rejects with the signal's reason when a stream is aborted mid-way", async () => {
    const fake = await startFake({ outputWords: 40, tokenIntervalMs: 20 });
    const controller = new AbortController();
    const reason = new Error('stop streaming');
    const deltas: string[] = [];
    const error = await rejectionOf(
      adapterFor(fake).complete(
        request({
          signal: controller.signal,
          onDelta: (text) => {
            deltas.push(text);
            if (deltas.length === 3) controller.abort(reason);
          },
        }),
      ),
    );
    expect(error).toBe(reason);
    expect(deltas.length).toBeLessThan(40);
  });

  it('fails with AuthenticationError naming the variable when the key is missing, sending nothing', async () => {
    const fake = await startFake();
    const model = adapterFor(fake, { apiKey: undefined, missingKeyEnv: 'FAKE_PROVIDER_API_KEY' });
    const error = await rejectionOf(model.complete(request()));
    expect(error).toBeInstanceOf(AuthenticationError);
    expect((error as Error).message).toContain('FAKE_PROVIDER_API_KEY');
    expect(error).toMatchObject({ code: 'missing_api_key', retryable: false });
    expect(fake.requests).toHaveLength(0);
  });

  it('maps a refused connection to a retryable ProviderConnectionError', async () => {
    const fake = await startFake();
    const url = fake.url;
    await fake.close();
    const error = await rejectionOf(
      createOpenAICompatibleProvider({ name: 'gone', baseURL: url, apiKey: 'k' }).complete(request()),
    );
    expect(error).toBeInstanceOf(ProviderConnectionError);
    expect(error).toMatchObject({ retryable: true, type: 'connection_error' });
  });
});
