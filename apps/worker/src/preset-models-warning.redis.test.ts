import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createFakeProvider, type FakeProvider } from '@moa-queue/fake-provider';
import { parseMoaConfig } from '@moa-queue/moa';
import { pollUntil, uniquePrefix } from '@moa-queue/test-support';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { startMoaWorker, type MoaWorker } from './moa-worker.js';
import { testWorkerConfig } from './testing/test-worker-config.js';

describe('a worker checks the preset models at start without waiting for the answer', () => {
  let fake: FakeProvider | undefined;
  let worker: MoaWorker | undefined;
  const held: ServerResponse[] = [];
  // A provider whose model list comes only when the test says so.
  const slow = createServer((_request, response) => void held.push(response));
  const prefix = uniquePrefix('models-check');

  afterAll(async () => {
    await worker?.close();
    slow.closeAllConnections();
    await new Promise((resolve) => slow.close(resolve));
    await fake?.close();
    const redis = new Redis(inject('redisUrl'), { maxRetriesPerRequest: null });
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length > 0) await redis.del(...keys);
    redis.disconnect();
  });

  it('starts at once, then logs the preset models a provider does not serve', async () => {
    fake = await createFakeProvider({ models: ['alpha', 'aggregator'] });
    await new Promise<void>((resolve) => slow.listen(0, '127.0.0.1', resolve));
    const slowPort = (slow.address() as AddressInfo).port;
    const moa = parseMoaConfig({
      providers: { fake: { baseURL: fake.url }, slow: { baseURL: `http://127.0.0.1:${slowPort}/v1` } },
      presets: {
        duo: {
          layers: [[{ model: 'fake/alpha' }, { model: 'fake/beta' }, { model: 'slow/m' }]],
          aggregator: { model: 'fake/aggregator' },
        },
      },
      defaultPreset: 'duo',
    });
    // Only the test's preset: the built-in ones name real providers, which a test never asks.
    for (const name of Object.keys(moa.presets)) if (name !== 'duo') delete moa.presets[name];

    const lines: { level: number; msg: string; missing?: unknown }[] = [];
    worker = await startMoaWorker({
      config: testWorkerConfig({
        redisUrl: inject('redisUrl'),
        queuePrefix: prefix,
        moa,
        concurrency: 2,
        logLevel: 'info',
      }),
      logger: pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line)) }),
      serveMetrics: false,
      presetModelsCheck: { timeoutMs: 60_000 },
    });

    // Started while the slow provider has not answered its model list.
    expect(lines.some((line) => line.msg === 'worker started')).toBe(true);
    await pollUntil(
      async () => held.length,
      (count) => count === 1,
      10_000,
    );
    expect(lines.filter((line) => line.level >= 40)).toEqual([]);

    held[0]!.writeHead(200, { 'content-type': 'application/json' });
    held[0]!.end(JSON.stringify({ object: 'list', data: [{ id: 'm' }] }));
    const warning = await pollUntil(
      async () => lines.find((line) => line.level === 40 && line.msg.startsWith('preset models not served')),
      (line) => line !== undefined,
      10_000,
    );
    expect(warning).toMatchObject({
      msg: 'preset models not served by their provider (calls to them will fail): fake/beta (presets: duo)',
      missing: [{ modelId: 'fake/beta', provider: 'fake', presets: ['duo'] }],
    });
  });
});
