import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createFakeProvider, type FakeProvider } from '@moa-queue/fake-provider';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseMoaConfig } from './load-config.js';
import { checkPresetModels, isServed, listedModelIds, missingPresetModels } from './preset-models-check.js';

/** A loopback port nothing listens on: connections to it are refused. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe('checkPresetModels', () => {
  let fake: FakeProvider;
  let deadPort: number;
  const key = 'sk-models-check-test-key-0123456789';

  beforeAll(async () => {
    fake = await createFakeProvider({ requireApiKey: key, models: ['alpha', 'beta', 'aggregator'] });
    deadPort = await closedPort();
  });
  afterAll(() => fake.close());

  const config = () =>
    parseMoaConfig({
      providers: {
        fake: { baseURL: fake.url, apiKeyEnv: 'FAKE_KEY' },
        wrongkey: { baseURL: `${fake.url}/`, apiKeyEnv: 'WRONG_KEY' },
        down: { baseURL: `http://127.0.0.1:${deadPort}/v1`, timeoutMs: 5000 },
        nokey: { baseURL: `http://127.0.0.1:${deadPort}/v1`, apiKeyEnv: 'MOA_TEST_UNSET_KEY' },
      },
      presets: {
        good: {
          layers: [[{ model: 'fake/alpha' }, { model: 'fake/beta' }]],
          aggregator: { model: 'fake/aggregator' },
        },
        gap: {
          layers: [[{ model: 'fake/alpha' }, { model: 'fake/gamma' }]],
          aggregator: { model: 'fake/aggregator' },
        },
        mixed: {
          layers: [[{ model: 'down/x' }, { model: 'nokey/y' }, { model: 'wrongkey/alpha' }]],
          aggregator: { model: 'fake/aggregator' },
        },
      },
    });
  const env = { FAKE_KEY: key, WRONG_KEY: 'sk-not-the-right-key-000000000000' };

  it('finds every model of a preset served', async () => {
    const checks = await checkPresetModels(config(), { presets: ['good'], env });
    expect(checks).toEqual([
      {
        provider: 'fake',
        url: `${fake.url}/models`,
        status: 'ok',
        listed: 3,
        models: [
          { modelId: 'fake/aggregator', providerModel: 'aggregator', presets: ['good'], served: true },
          { modelId: 'fake/alpha', providerModel: 'alpha', presets: ['good'], served: true },
          { modelId: 'fake/beta', providerModel: 'beta', presets: ['good'], served: true },
        ],
      },
    ]);
  });

  it('lists a model the provider does not serve, with the presets that use it', async () => {
    const [check] = await checkPresetModels(config(), { presets: ['good', 'gap'], env });
    expect(check!.models.filter((model) => !model.served)).toEqual([
      { modelId: 'fake/gamma', providerModel: 'gamma', presets: ['gap'], served: false },
    ]);
    expect(check!.models.find((model) => model.modelId === 'fake/alpha')?.presets).toEqual(['gap', 'good']);
  });

  it('reports a provider that is unreachable, refuses the key or has no key', async () => {
    const checks = await checkPresetModels(config(), { presets: ['mixed'], env });
    const byName = Object.fromEntries(checks.map((check) => [check.provider, check]));
    expect(Object.keys(byName)).toEqual(['down', 'fake', 'nokey', 'wrongkey']);
    expect(byName.down).toMatchObject({
      status: 'unreachable',
      models: [{ modelId: 'down/x', served: null }],
    });
    expect(byName.down!.message).toContain(
      `cannot reach http://127.0.0.1:${deadPort}/v1/models: ECONNREFUSED`,
    );
    expect(byName.nokey).toMatchObject({
      status: 'no_key',
      message: 'no API key: MOA_TEST_UNSET_KEY is not set',
      models: [{ modelId: 'nokey/y', served: null }],
    });
    expect(byName.wrongkey).toMatchObject({ status: 'error', models: [{ served: null }] });
    expect(byName.wrongkey!.message).toMatch(/^GET http:\/\/127\.0\.0\.1:\d+\/v1\/models: HTTP 401/);
    expect(byName.fake).toMatchObject({
      status: 'ok',
      models: [{ modelId: 'fake/aggregator', served: true }],
    });
  });

  it('lists what is missing across providers with missingPresetModels', async () => {
    const checks = await checkPresetModels(config(), { presets: ['gap', 'mixed'], env });
    expect(missingPresetModels(checks)).toEqual([
      { modelId: 'fake/gamma', provider: 'fake', presets: ['gap'] },
    ]);
  });

  it('stops asking when its signal aborts', async () => {
    const server = createServer(() => undefined); // accepts, never answers
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = server.address() as AddressInfo;
      const silent = parseMoaConfig({
        providers: { silent: { baseURL: `http://127.0.0.1:${port}/v1` } },
        presets: { p: { layers: [[{ model: 'silent/m' }]], aggregator: { model: 'silent/m' } } },
      });
      const controller = new AbortController();
      const started = Date.now();
      const pending = checkPresetModels(silent, {
        presets: ['p'],
        timeoutMs: 30_000,
        signal: controller.signal,
      });
      setTimeout(() => controller.abort(), 100);
      const [check] = await pending;
      expect(Date.now() - started).toBeLessThan(5000);
      expect(check).toMatchObject({ status: 'unreachable', message: expect.stringContaining('cancelled') });
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('gives up on a provider that does not answer in time', async () => {
    const server = createServer(() => undefined); // accepts, never answers
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = server.address() as AddressInfo;
      const silent = parseMoaConfig({
        providers: { silent: { baseURL: `http://127.0.0.1:${port}/v1` } },
        presets: { p: { layers: [[{ model: 'silent/m' }]], aggregator: { model: 'silent/m' } } },
      });
      const [check] = await checkPresetModels(silent, { presets: ['p'], timeoutMs: 200 });
      expect(check).toMatchObject({
        status: 'unreachable',
        message: expect.stringContaining('no answer in time'),
      });
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});

describe('model list answers', () => {
  it("reads OpenAI's list and Together's bare array", () => {
    expect(listedModelIds({ object: 'list', data: [{ id: 'a' }, { id: 'b' }, { nope: 1 }] })).toEqual([
      'a',
      'b',
    ]);
    expect(listedModelIds([{ id: 'Qwen/Qwen2.5-72B-Instruct-Turbo', type: 'chat' }])).toEqual([
      'Qwen/Qwen2.5-72B-Instruct-Turbo',
    ]);
    expect(listedModelIds({ error: 'x' })).toBeUndefined();
    expect(listedModelIds('text')).toBeUndefined();
  });

  it("matches exact ids, and Ollama's :latest tag for an untagged model", () => {
    const listed = new Set(['llama3.2:latest', 'qwen2.5:7b', 'Exact/Id']);
    expect(isServed(listed, 'llama3.2')).toBe(true);
    expect(isServed(listed, 'llama3.2:latest')).toBe(true);
    expect(isServed(listed, 'qwen2.5')).toBe(false);
    expect(isServed(listed, 'qwen2.5:7b')).toBe(true);
    expect(isServed(listed, 'exact/id')).toBe(false);
  });
});
