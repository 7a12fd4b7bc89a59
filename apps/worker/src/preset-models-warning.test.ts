import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createFakeProvider, type FakeProvider } from '@moa-queue/fake-provider';
import { parseMoaConfig } from '@moa-queue/moa';
import { pino } from 'pino';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { warnAboutPresetModels } from './preset-models-warning.js';

interface LogLine {
  level: number;
  msg: string;
  [field: string]: unknown;
}

/** A logger that keeps every line, as a worker's would be written. */
function capturingLogger() {
  const lines: LogLine[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
  const at = (level: number) => lines.filter((line) => line.level === level);
  return { logger, lines, warnings: () => at(40), infos: () => at(30) };
}

async function listen(server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

describe("the worker's start-up check of preset models", () => {
  let fake: FakeProvider;
  let deadPort: number;
  const key = 'sk-worker-models-check-key-0123456789';
  const env = { FAKE_KEY: key };

  beforeAll(async () => {
    fake = await createFakeProvider({ requireApiKey: key });
    const closed = createServer();
    deadPort = await listen(closed);
    await new Promise((resolve) => closed.close(resolve));
  });
  afterAll(() => fake.close());
  beforeEach(() => fake.setModels(['alpha', 'beta', 'aggregator']));

  /** Only these presets: the built-in ones name real providers, which a test never asks. */
  const config = (presets: Record<string, unknown>, providers: Record<string, unknown> = {}) => {
    const parsed = parseMoaConfig({
      providers: { fake: { baseURL: fake.url, apiKeyEnv: 'FAKE_KEY' }, ...providers },
      presets,
      defaultPreset: Object.keys(presets)[0],
    });
    for (const name of Object.keys(parsed.presets)) if (!(name in presets)) delete parsed.presets[name];
    return parsed;
  };
  const duo = {
    layers: [[{ model: 'fake/alpha' }, { model: 'fake/beta' }]],
    aggregator: { model: 'fake/aggregator' },
  };

  it('logs one warning listing the preset models the provider no longer serves', async () => {
    fake.setModels(['alpha', 'aggregator']);
    const log = capturingLogger();
    await warnAboutPresetModels(
      config({
        duo,
        solo: {
          layers: [[{ model: 'fake/beta' }, { model: 'fake/gamma' }]],
          aggregator: { model: 'fake/alpha' },
        },
      }),
      log.logger,
      { env },
    );
    expect(log.warnings()).toHaveLength(1);
    const [warning] = log.warnings();
    expect(warning!.msg).toBe(
      'preset models not served by their provider (calls to them will fail): ' +
        'fake/beta (presets: duo, solo); fake/gamma (presets: solo)',
    );
    expect(warning!.missing).toEqual([
      { modelId: 'fake/beta', provider: 'fake', presets: ['duo', 'solo'] },
      { modelId: 'fake/gamma', provider: 'fake', presets: ['solo'] },
    ]);
  });

  it('logs one warning per provider it cannot ask, and still checks the others', async () => {
    fake.setModels(['alpha']);
    const log = capturingLogger();
    await warnAboutPresetModels(
      config(
        {
          duo: {
            layers: [
              [{ model: 'down/x' }, { model: 'down/y' }, { model: 'nokey/z' }, { model: 'fake/alpha' }],
            ],
            aggregator: { model: 'fake/aggregator' },
          },
        },
        {
          down: { baseURL: `http://127.0.0.1:${deadPort}/v1` },
          nokey: { baseURL: `http://127.0.0.1:${deadPort}/v1`, apiKeyEnv: 'MOA_TEST_UNSET_KEY' },
        },
      ),
      log.logger,
      { env },
    );
    const warnings = log.warnings();
    // Providers in name order (down, fake, nokey): those not asked first, then what is missing.
    expect(warnings.map((line) => line.msg)).toEqual([
      `cannot check the preset models of provider down: cannot reach http://127.0.0.1:${deadPort}/v1/models: ECONNREFUSED`,
      'cannot check the preset models of provider nokey: no API key: MOA_TEST_UNSET_KEY is not set',
      'preset models not served by their provider (calls to them will fail): fake/aggregator (presets: duo)',
    ]);
    expect(warnings.find((line) => line.provider === 'down')).toMatchObject({
      status: 'unreachable',
      presets: ['duo'],
      models: ['down/x', 'down/y'],
    });
  });

  it('logs one info line and no warning when every preset model is served', async () => {
    const log = capturingLogger();
    await warnAboutPresetModels(config({ duo }), log.logger, { env });
    expect(log.warnings()).toEqual([]);
    expect(log.infos()).toMatchObject([
      { msg: 'every preset model is served by its provider', providers: ['fake'], models: 3 },
    ]);
  });

  it('gives up on a provider after its short timeout, with a warning', async () => {
    const silent = createServer(() => undefined); // accepts, never answers
    const port = await listen(silent);
    try {
      const log = capturingLogger();
      const started = Date.now();
      await warnAboutPresetModels(
        config(
          { duo: { layers: [[{ model: 'silent/m' }]], aggregator: { model: 'fake/alpha' } } },
          { silent: { baseURL: `http://127.0.0.1:${port}/v1` } },
        ),
        log.logger,
        { env, timeoutMs: 200 },
      );
      expect(Date.now() - started).toBeLessThan(5000);
      expect(log.warnings()).toMatchObject([
        { provider: 'silent', status: 'unreachable', msg: expect.stringContaining('no answer in time') },
      ]);
    } finally {
      silent.closeAllConnections();
      await new Promise((resolve) => silent.close(resolve));
    }
  });

  it('logs nothing once the worker is closing', async () => {
    const silent = createServer(() => undefined);
    const port = await listen(silent);
    try {
      const log = capturingLogger();
      const controller = new AbortController();
      const check = warnAboutPresetModels(
        config(
          { duo: { layers: [[{ model: 'silent/m' }]], aggregator: { model: 'silent/m' } } },
          { silent: { baseURL: `http://127.0.0.1:${port}/v1` } },
        ),
        log.logger,
        { env, timeoutMs: 30_000, signal: controller.signal },
      );
      setTimeout(() => controller.abort(), 50);
      await check;
      expect(log.lines).toEqual([]);
    } finally {
      silent.closeAllConnections();
      await new Promise((resolve) => silent.close(resolve));
    }
  });
});
