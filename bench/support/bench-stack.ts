import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  spawnTsProcess,
  startRedisServer,
  type RedisServerProcess,
  type TsProcess,
} from '@moa-queue/test-support';
import { Redis } from 'ioredis';

/** Options of {@link startBenchStack}. */
export interface BenchStackOptions {
  workers: number;
  /** Latency of every fake provider call, in milliseconds. */
  latencyMs: number;
  /** Agents per proposer layer and number of proposer layers. */
  agents: number;
  proposerLayers: number;
  workerConcurrency?: number;
  /**
   * Words per fake answer: 40 keeps runs quick; real answers of strong models
   * run to 300–500 words (AlpacaEval), so memory is measured at 400 too.
   * @defaultValue 40
   */
  outputWords?: number;
  /** More of the config file (e.g. `quotas`), merged over the bench's providers, models and preset. */
  config?: Record<string, unknown>;
  /** Extra environment for the worker processes (e.g. `BATCH_ITEM_GRACE_MS`). */
  workerEnv?: Record<string, string>;
  /** `MOA_FILES_DIR` of the API and the workers: `temporary` for one that `stop` removes. @defaultValue unset (files in Redis) */
  filesDir?: string | 'temporary';
}

/** Every process of a benchmark run: its own redis-server, fake provider, API and workers. */
export interface BenchStack {
  apiUrl: string;
  fakeUrl: string;
  redisUrl: string;
  redis: Redis;
  redisServer: RedisServerProcess;
  fake: TsProcess;
  api: TsProcess;
  workers: TsProcess[];
  configPath: string;
  preset: Record<string, unknown>;
  stop(): Promise<void>;
}

/** The benchmark preset: `proposerLayers` layers of `agents` fake models, then an aggregator. */
export function benchPreset(agents: number, proposerLayers: number) {
  const layer = Array.from({ length: agents }, (_, index) => ({ model: `fake/proposer-${index}` }));
  return {
    layers: Array.from({ length: proposerLayers }, () => layer),
    aggregator: { model: 'fake/aggregator' },
  };
}

/**
 * Starts a private redis-server (so INFO commandstats counts only this run),
 * the fake provider as its own process, the API and N workers, all real
 * processes talking over loopback.
 */
export async function startBenchStack(options: BenchStackOptions): Promise<BenchStack> {
  const redisServer = await startRedisServer();
  const fakeProcess = spawnTsProcess('tools/fake-provider/src/main.ts', {}, [
    '--latency-ms',
    String(options.latencyMs),
    '--output-words',
    String(options.outputWords ?? 40),
  ]);
  const listening = await fakeProcess.waitForLine((line) => line.includes('listening on'));
  const fakeUrl = /http:\/\/[\d.]+:\d+\/v1/.exec(listening)![0];
  const directory = mkdtempSync(join(tmpdir(), 'moa-bench-'));
  const configPath = join(directory, 'moa.json');
  const preset = benchPreset(options.agents, options.proposerLayers);
  const models: Record<string, { inputCostPerMTok: number; outputCostPerMTok: number }> = {
    'fake/aggregator': { inputCostPerMTok: 1, outputCostPerMTok: 1 },
  };
  for (let index = 0; index < options.agents; index += 1) {
    models[`fake/proposer-${index}`] = { inputCostPerMTok: 1, outputCostPerMTok: 1 };
  }
  writeFileSync(
    configPath,
    JSON.stringify({
      providers: { fake: { baseURL: fakeUrl, concurrency: 100_000 } },
      models,
      presets: { bench: preset },
      defaultPreset: 'bench',
      ...options.config,
    }),
  );
  const environment = {
    REDIS_URL: redisServer.url,
    MOA_CONFIG: configPath,
    MOA_QUEUE_PREFIX: 'bench',
    PORT: '0',
    METRICS_PORT: '0',
    LOG_LEVEL: 'warn',
    WORKER_CONCURRENCY: String(options.workerConcurrency ?? 200),
    ...(options.filesDir === undefined
      ? {}
      : { MOA_FILES_DIR: options.filesDir === 'temporary' ? join(directory, 'files') : options.filesDir }),
  };
  const api = spawnTsProcess('apps/api/src/main.ts', { ...environment, LOG_LEVEL: 'info' });
  // BENCH_PROFILE=<dir> writes a V8 CPU profile of each worker there, to find what dominates.
  const profile = process.env.BENCH_PROFILE
    ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROFILE}`]
    : [];
  const workers = Array.from({ length: options.workers }, () =>
    spawnTsProcess(
      'apps/worker/src/main.ts',
      { ...environment, LOG_LEVEL: 'info', ...options.workerEnv },
      [],
      profile,
    ),
  );
  const apiLine = await api.waitForLine((line) => line.includes('API listening'));
  await Promise.all(workers.map((worker) => worker.waitForLine((line) => line.includes('worker started'))));
  const redis = new Redis(redisServer.url);
  return {
    apiUrl: /http:\/\/[\d.]+:\d+/.exec(apiLine)![0],
    fakeUrl,
    redisUrl: redisServer.url,
    redis,
    redisServer,
    fake: fakeProcess,
    api,
    workers,
    configPath,
    preset,
    async stop() {
      redis.disconnect();
      await Promise.all([api, ...workers, fakeProcess].map((child) => child.stop('SIGTERM')));
      await redisServer.stop();
      rmSync(directory, { recursive: true, force: true });
    },
  };
}

/** Total calls of each Redis command so far (INFO commandstats). */
export async function redisCommandCount(redis: Redis): Promise<number> {
  const info = await redis.info('commandstats');
  let total = 0;
  for (const match of info.matchAll(/cmdstat_[^:]+:calls=(\d+)/g)) total += Number(match[1]);
  return total;
}

/**
 * Submits one MoA request through the API's `POST /v1/jobs`; throws unless it
 * is accepted. A 503 (the API's queues still starting, or Redis slow on a
 * loaded machine) is retried after its `Retry-After`, as a client would.
 */
export async function submitJob(apiUrl: string, prompt: string): Promise<void> {
  for (let attempt = 1; ; attempt += 1) {
    const response = await fetch(`${apiUrl}/v1/jobs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ messages: [{ role: 'user', content: prompt }] }),
    });
    await response.arrayBuffer();
    if (response.status === 202) return;
    if (response.status !== 503 || attempt >= 10) {
      throw new Error(`POST /v1/jobs answered ${response.status}`);
    }
    const waitSeconds = Number(response.headers.get('retry-after') ?? 1);
    await new Promise((resolve) => setTimeout(resolve, Math.max(waitSeconds, 0.1) * 1000));
  }
}
