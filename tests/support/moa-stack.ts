import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createApp, type AppDependencies, type JobView } from '@moa-queue/api';
import { createFileStore, createMoaQueues, type FileStore, type MoaQueues } from '@moa-queue/contract';
import { createFakeProvider, type FakeProvider, type FakeProviderOptions } from '@moa-queue/fake-provider';
import { parseMoaConfig, type MoaConfig } from '@moa-queue/moa';
import { spawnTsProcess, uniquePrefix, type TsProcess } from '@moa-queue/test-support';
import type { Express } from 'express';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import request from 'supertest';

/** Prices of the fake models, USD per 1M tokens. */
export const FAKE_PRICES = {
  'fake/alpha': { inputCostPerMTok: 1.2, outputCostPerMTok: 1.2 },
  'fake/beta': { inputCostPerMTok: 0.88, outputCostPerMTok: 0.88 },
  'fake/gamma': { inputCostPerMTok: 0.2, outputCostPerMTok: 0.6 },
  'fake/dead': { inputCostPerMTok: 1, outputCostPerMTok: 1 },
  'fake/slow': { inputCostPerMTok: 1, outputCostPerMTok: 1 },
  'fake/aggregator': { inputCostPerMTok: 3, outputCostPerMTok: 4 },
};

/** The config file the stack's workers and API share: providers point at the fake server. */
export function stackConfigFile(fakeUrl: string): Record<string, unknown> {
  const three = [{ model: 'fake/alpha' }, { model: 'fake/beta' }, { model: 'fake/gamma' }];
  return {
    providers: {
      fake: { baseURL: fakeUrl, apiKeyEnv: 'FAKE_PROVIDER_API_KEY', maxAttempts: 3 },
      // The same fake server as a second provider that allows 2 calls at a time across all workers.
      narrow: { baseURL: fakeUrl, apiKeyEnv: 'FAKE_PROVIDER_API_KEY', concurrency: 2 },
    },
    models: FAKE_PRICES,
    presets: {
      three: {
        description: '3 layers of 3',
        layers: [three, three],
        aggregator: { model: 'fake/aggregator' },
      },
      'one-dead': {
        layers: [
          [{ model: 'fake/alpha' }, { model: 'fake/dead' }, { model: 'fake/gamma' }],
          [{ model: 'fake/alpha' }, { model: 'fake/beta' }],
        ],
        aggregator: { model: 'fake/aggregator' },
      },
      deadline: {
        layers: [[{ model: 'fake/alpha' }, { model: 'fake/beta' }, { model: 'fake/slow' }]],
        aggregator: { model: 'fake/aggregator' },
        layerTimeoutMs: 1000,
      },
      unpriced: {
        layers: [[{ model: 'fake/alpha' }, { model: 'fake/unpriced' }]],
        aggregator: { model: 'fake/aggregator' },
      },
      narrow: {
        layers: [[1, 2, 3, 4, 5, 6].map((index) => ({ model: `narrow/lane-${index}` }))],
        aggregator: { model: 'fake/aggregator' },
      },
      'all-dead': {
        layers: [[{ model: 'fake/dead' }, { model: 'fake/dead' }]],
        aggregator: { model: 'fake/aggregator' },
      },
    },
    defaultPreset: 'three',
    // Receivers in tests listen on loopback, which webhooks refuse unless allowed.
    webhooks: { allowHosts: ['127.0.0.1'], retryScheduleMs: [300, 300, 300], retryHorizonMs: 60_000 },
  };
}

/** The webhook signing secret the stack's API and workers share. */
export const WEBHOOK_SECRET = `whsec_${Buffer.from('moa-queue-test-webhook-secret-32b').toString('base64')}`;

/** Options of {@link startMoaStack}. */
export interface MoaStackOptions {
  name: string;
  redisUrl: string;
  workers: number;
  fake?: FakeProviderOptions;
  /** Extra environment for the worker processes. */
  workerEnv?: Record<string, string>;
  /** Extra dependencies for the in-process API. */
  app?: Partial<AppDependencies>;
  /** Changes the config file that the API and the workers read (e.g. adds `tenants`). */
  configure?: (file: Record<string, unknown>) => Record<string, unknown>;
  /**
   * Files in a directory (`MOA_FILES_DIR` of the workers, the same store for the API): `temporary`
   * makes one that `stop` removes. Unset: files in Redis.
   */
  filesDir?: string | 'temporary';
}

/** A fake provider, N worker processes and an in-process API on one real Redis. */
export interface MoaStack {
  fake: FakeProvider;
  workers: TsProcess[];
  app: Express;
  config: MoaConfig;
  queues: MoaQueues;
  redis: Redis;
  /** The API's file store (the workers have the same one). */
  files: FileStore;
  /** `MOA_FILES_DIR`, when files are in a directory. */
  filesDir: string | undefined;
  prefix: string;
  environment: Record<string, string>;
  startWorker(): Promise<TsProcess>;
  /** Serves the app on a real loopback socket; returns its base URL. */
  listen(): Promise<string>;
  submit(body: Record<string, unknown>): Promise<JobView>;
  get(id: string): Promise<JobView>;
  waitFor(id: string, timeoutMs?: number): Promise<JobView>;
  stop(): Promise<void>;
}

export const PROVIDER_KEY = 'sk-fake-secret-key-for-tests-0123456789';

/** Starts the stack; every process talks to the others only through Redis and HTTP. */
export async function startMoaStack(options: MoaStackOptions): Promise<MoaStack> {
  const fake = await createFakeProvider({ defaultLatencyMs: 20, ...options.fake });
  const directory = mkdtempSync(join(tmpdir(), `moa-${options.name}-`));
  const configPath = join(directory, 'moa.json');
  const file = (options.configure ?? ((base) => base))(stackConfigFile(fake.url));
  writeFileSync(configPath, JSON.stringify(file));
  const config = parseMoaConfig(file);
  const prefix = uniquePrefix(options.name);
  const filesDir = options.filesDir === 'temporary' ? join(directory, 'files') : options.filesDir;
  const environment: Record<string, string> = {
    REDIS_URL: options.redisUrl,
    MOA_QUEUE_PREFIX: prefix,
    MOA_CONFIG: configPath,
    METRICS_PORT: '0',
    METRICS_HOST: '127.0.0.1',
    LOG_LEVEL: 'debug',
    FAKE_PROVIDER_API_KEY: PROVIDER_KEY,
    WORKER_LOCK_DURATION_MS: '4000',
    WORKER_STALLED_INTERVAL_MS: '1000',
    SHUTDOWN_GRACE_MS: '5000',
    MOA_WEBHOOK_SECRET: WEBHOOK_SECRET,
    ...(filesDir === undefined ? {} : { MOA_FILES_DIR: filesDir }),
    ...options.workerEnv,
  };
  const workers: TsProcess[] = [];
  async function startWorker(): Promise<TsProcess> {
    const worker = spawnTsProcess('apps/worker/src/main.ts', environment);
    workers.push(worker);
    await worker.waitForLine((line) => line.includes('"worker started"'));
    return worker;
  }
  await Promise.all(Array.from({ length: options.workers }, () => startWorker()));

  const redis = new Redis(options.redisUrl, { maxRetriesPerRequest: null });
  // A suite that restarts Redis sees connection errors; they are expected, not failures.
  redis.on('error', () => undefined);
  const queues = createMoaQueues({
    connection: redis,
    prefix,
    providers: Object.keys(config.providers),
    onError: () => undefined,
  });
  const files = createFileStore({ redis, prefix, directory: filesDir });
  const app = createApp({
    queues,
    redis,
    files,
    config,
    logger: pino({ level: process.env.STACK_LOG ?? 'silent' }),
    webhookSecret: WEBHOOK_SECRET,
    ...options.app,
  });
  const servers: Server[] = [];

  async function get(id: string): Promise<JobView> {
    const response = await request(app).get(`/v1/jobs/${id}`);
    if (response.status !== 200)
      throw new Error(`GET ${id}: ${response.status} ${JSON.stringify(response.body)}`);
    return response.body as JobView;
  }

  return {
    fake,
    workers,
    app,
    config,
    queues,
    redis,
    files,
    filesDir,
    prefix,
    environment,
    startWorker,
    async listen() {
      const server = app.listen(0, '127.0.0.1');
      servers.push(server);
      await once(server, 'listening');
      return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    },
    async submit(body) {
      const response = await request(app).post('/v1/jobs').send(body);
      if (response.status !== 202)
        throw new Error(`POST: ${response.status} ${JSON.stringify(response.body)}`);
      return response.body as JobView;
    },
    get,
    async waitFor(id, timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const job = await get(id);
        if (['completed', 'failed', 'cancelled'].includes(job.status)) return job;
        if (Date.now() > deadline) throw new Error(`job ${id} still ${job.status} after ${timeoutMs} ms`);
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
    },
    async stop() {
      for (const server of servers) server.closeAllConnections();
      await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
      await Promise.all(workers.map((worker) => worker.stop('SIGTERM')));
      await queues.close();
      redis.disconnect();
      await fake.close();
      rmSync(directory, { recursive: true, force: true });
    },
  };
}

/** The metrics port a worker process logged when it started. */
export function metricsPortOf(worker: TsProcess): number {
  const line = worker.logs.find((entry) => entry.msg === 'worker started');
  const port = Number(line?.metricsPort);
  if (!port) throw new Error('worker did not log its metrics port');
  return port;
}

/** One sample of a Prometheus text exposition. */
export interface MetricSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses Prometheus text format (enough for tests: no escapes inside label values). */
export function parseMetrics(text: string): MetricSample[] {
  const samples: MetricSample[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match) continue;
    const labels: Record<string, string> = {};
    for (const pair of (match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="([^"]*)"/g))
      labels[pair[1]!] = pair[2]!;
    samples.push({ name: match[1]!, labels, value: Number(match[3]) });
  }
  return samples;
}

/** Sum of the samples named `name` whose labels include `labels`. */
export function sumOf(samples: MetricSample[], name: string, labels: Record<string, string> = {}): number {
  return samples
    .filter(
      (sample) =>
        sample.name === name && Object.entries(labels).every(([key, value]) => sample.labels[key] === value),
    )
    .reduce((sum, sample) => sum + sample.value, 0);
}

/** `moa_redis_up` of each worker process of the stack, from its metrics port (served with or without Redis). */
export async function redisUpOfWorkers(stack: MoaStack): Promise<number[]> {
  return Promise.all(
    stack.workers.map(async (worker) => {
      const response = await fetch(`http://127.0.0.1:${metricsPortOf(worker)}/metrics`);
      return sumOf(parseMetrics(await response.text()), 'moa_redis_up');
    }),
  );
}

/** The text of a recorded request's system message, or '' when it has none. */
export function systemText(messages: { role: string; content: string }[]): string {
  return messages.find((message) => message.role === 'system')?.content ?? '';
}
