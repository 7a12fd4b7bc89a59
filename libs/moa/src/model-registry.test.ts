import { afterEach, describe, it, expect } from 'vitest';
import { createFakeProvider, type FakeProvider } from '@moa-queue/fake-provider';
import type { ChatModel } from './chat-model.js';
import { AuthenticationError } from './errors/authentication-error.js';
import { InvalidRequestError } from './errors/invalid-request-error.js';
import { builtInConfig } from './built-in-config.js';
import { parseMoaConfig } from './load-config.js';
import { createModelRegistry } from './model-registry.js';
import { createInMemoryModel } from './testing/in-memory-model.js';
import type { ProviderConfig } from './types.js';

const started: FakeProvider[] = [];

afterEach(async () => {
  await Promise.all(started.splice(0).map((fake) => fake.close()));
});

async function startFake(): Promise<FakeProvider> {
  const fake = await createFakeProvider();
  started.push(fake);
  return fake;
}

function thrownBy(action: () => unknown): unknown {
  try {
    action();
  } catch (error) {
    return error;
  }
  throw new Error('expected it to throw');
}

const request = {
  model: 'ignored',
  messages: [{ role: 'user' as const, content: 'hi' }],
  temperature: 0.7,
  maxTokens: 16,
};

describe('createModelRegistry', () => {
  it('resolves the provider, the model id sent to it and the pricing', () => {
    const config = builtInConfig();
    const registry = createModelRegistry(config, { createChatModel: () => createInMemoryModel(), env: {} });
    const resolved = registry.resolve('together/Qwen/Qwen2.5-72B-Instruct-Turbo');
    expect(resolved.modelId).toBe('together/Qwen/Qwen2.5-72B-Instruct-Turbo');
    expect(resolved.provider).toBe('together');
    expect(resolved.providerModel).toBe('Qwen/Qwen2.5-72B-Instruct-Turbo');
    expect(resolved.pricing).toEqual({ inputCostPerMTok: 1.2, outputCostPerMTok: 1.2 });
    expect(resolved.providerConfig).toEqual(config.providers.together);
  });

  it('resolves a model without a price to undefined pricing', () => {
    const registry = createModelRegistry(builtInConfig(), {
      createChatModel: () => createInMemoryModel(),
      env: {},
    });
    const resolved = registry.resolve('ollama/llama3.2:3b');
    expect(resolved.provider).toBe('ollama');
    expect(resolved.providerModel).toBe('llama3.2:3b');
    expect(resolved.pricing).toBeUndefined();
  });

  it('uses prices and providers from a config file', () => {
    const config = parseMoaConfig({
      providers: { local: { baseURL: 'http://127.0.0.1:1/v1', maxAttempts: 5 } },
      models: { 'local/tiny': { inputCostPerMTok: 0.1, outputCostPerMTok: 0.2 } },
    });
    const registry = createModelRegistry(config, { createChatModel: () => createInMemoryModel(), env: {} });
    const resolved = registry.resolve('local/tiny');
    expect(resolved.pricing).toEqual({ inputCostPerMTok: 0.1, outputCostPerMTok: 0.2 });
    expect(resolved.providerConfig).toMatchObject({ name: 'local', maxAttempts: 5 });
  });

  it('rejects an unknown provider with InvalidRequestError', () => {
    const registry = createModelRegistry(builtInConfig(), {
      createChatModel: () => createInMemoryModel(),
      env: {},
    });
    const error = thrownBy(() => registry.resolve('nowhere/some-model'));
    expect(error).toBeInstanceOf(InvalidRequestError);
    expect(error).toMatchObject({ code: 'unknown_provider', retryable: false });
    expect((error as Error).message).toContain('nowhere');
  });

  it('does not resolve prototype names such as constructor as providers', () => {
    const registry = createModelRegistry(builtInConfig(), {
      createChatModel: () => createInMemoryModel(),
      env: {},
    });
    for (const name of ['constructor', '__proto__', 'toString', 'hasOwnProperty']) {
      expect(thrownBy(() => registry.resolve(`${name}/x`))).toBeInstanceOf(InvalidRequestError);
    }
  });

  it('creates one adapter per provider, shared by its models', () => {
    const created: string[] = [];
    const registry = createModelRegistry(builtInConfig(), {
      env: {},
      createChatModel: (provider) => {
        created.push(provider.name);
        return createInMemoryModel({ provider: provider.name });
      },
    });
    const qwen = registry.resolve('together/Qwen/Qwen2.5-72B-Instruct-Turbo');
    const llama = registry.resolve('together/meta-llama/Llama-3.3-70B-Instruct-Turbo');
    const again = registry.resolve('together/Qwen/Qwen2.5-72B-Instruct-Turbo');
    const gpt = registry.resolve('openai/gpt-4o');
    expect(llama.chatModel).toBe(qwen.chatModel);
    expect(again.chatModel).toBe(qwen.chatModel);
    expect(gpt.chatModel).not.toBe(qwen.chatModel);
    expect(gpt.chatModel.provider).toBe('openai');
    expect(created).toEqual(['together', 'openai']);
  });

  it('hands createChatModel the provider and its key from env', () => {
    const seen: [ProviderConfig, string | undefined][] = [];
    const registry = createModelRegistry(builtInConfig(), {
      env: { TOGETHER_API_KEY: 'tk-1', OPENAI_API_KEY: '' },
      createChatModel: (provider, apiKey): ChatModel => {
        seen.push([provider, apiKey]);
        return createInMemoryModel();
      },
    });
    registry.resolve('together/x');
    registry.resolve('openai/y');
    registry.resolve('ollama/z');
    expect(seen.map(([provider, apiKey]) => [provider.name, apiKey])).toEqual([
      ['together', 'tk-1'],
      // An empty variable counts as unset.
      ['openai', undefined],
      ['ollama', undefined],
    ]);
  });

  it('fails calls of a provider whose key variable is unset with AuthenticationError, sending nothing', async () => {
    const fake = await startFake();
    const config = parseMoaConfig({
      providers: { remote: { baseURL: fake.url, apiKeyEnv: 'REMOTE_TEST_KEY' } },
    });
    const registry = createModelRegistry(config, { env: {} });
    const resolved = registry.resolve('remote/some-model');
    const error = await resolved.chatModel.complete({ ...request, model: resolved.providerModel }).then(
      () => undefined,
      (rejection: unknown) => rejection,
    );
    expect(error).toBeInstanceOf(AuthenticationError);
    expect((error as Error).message).toContain('REMOTE_TEST_KEY');
    expect(fake.requests).toHaveLength(0);
  });

  it('sends the key from env to the provider with the default adapter', async () => {
    const fake = await startFake();
    const config = parseMoaConfig({
      providers: { remote: { baseURL: fake.url, apiKeyEnv: 'REMOTE_TEST_KEY' } },
    });
    const registry = createModelRegistry(config, { env: { REMOTE_TEST_KEY: 'sk-from-env' } });
    const resolved = registry.resolve('remote/org/some-model');
    const result = await resolved.chatModel.complete({ ...request, model: resolved.providerModel });
    expect(result.output.length).toBeGreaterThan(0);
    expect(fake.requests).toHaveLength(1);
    expect(fake.requests[0]).toMatchObject({ model: 'org/some-model', authorization: 'Bearer sk-from-env' });
  });

  it('calls a keyless provider without an auth error', async () => {
    const fake = await startFake();
    const config = parseMoaConfig({ providers: { local: { baseURL: fake.url } } });
    const resolved = createModelRegistry(config, { env: {} }).resolve('local/m');
    await resolved.chatModel.complete({ ...request, model: resolved.providerModel });
    expect(fake.requests).toHaveLength(1);
  });
});
