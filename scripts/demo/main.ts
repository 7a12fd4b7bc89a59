/**
 * `npm run demo`: the main job on one machine. Finds or starts Redis as the
 * tests do (see findRedis in tools/test-support), starts
 * the API and two workers as real processes, runs a few MoA requests through
 * the HTTP API, prints each layer's latency, tokens and cost and the answers,
 * then stops everything it started.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { JobView } from '@moa-queue/api';
import { DEFAULT_REDIS_URL, findRedis, spawnTsProcess, type TsProcess } from '@moa-queue/test-support';
import { chooseProviderMode } from './provider-mode.js';
import { renderJob } from './report.js';

const say = (line: string) => console.log(`[demo] ${line}`);
const cleanups: (() => Promise<unknown>)[] = [];

/**
 * The same search as the tests: REDIS_URL (an error when it does not answer), else the default URL
 * when it answers, else a redis:7 container when a Docker engine answers, else a local redis-server.
 */
async function useRedis(): Promise<string> {
  const redis = await findRedis({ defaultUrl: DEFAULT_REDIS_URL, log: say });
  cleanups.push(() => redis.stop());
  say(`using Redis at ${redis.description}`);
  return redis.url;
}

async function main(): Promise<void> {
  const redisUrl = await useRedis();
  const mode = await chooseProviderMode(process.env);
  cleanups.push(() => mode.close());
  say(mode.description);

  const directory = mkdtempSync(join(tmpdir(), 'moa-demo-'));
  cleanups.push(async () => rmSync(directory, { recursive: true, force: true }));
  const configPath = join(directory, 'moa.json');
  writeFileSync(configPath, JSON.stringify(mode.configFile, null, 2));
  const environment = {
    REDIS_URL: redisUrl,
    MOA_CONFIG: configPath,
    // A prefix of its own, so the demo never touches a deployment sharing this Redis.
    MOA_QUEUE_PREFIX: `moa-demo-${process.pid}`,
    PORT: '0',
    METRICS_PORT: '0',
    LOG_LEVEL: 'warn',
    ...mode.workerEnv,
  };

  say('starting the API and two workers…');
  const processes: TsProcess[] = [];
  cleanups.push(() => Promise.all(processes.map((child) => child.stop('SIGTERM'))));
  const api = spawnTsProcess('apps/api/src/main.ts', { ...environment, LOG_LEVEL: 'info' });
  processes.push(api);
  const workers = [0, 1].map(() =>
    spawnTsProcess('apps/worker/src/main.ts', { ...environment, LOG_LEVEL: 'info' }),
  );
  processes.push(...workers);
  const listening = await api.waitForLine((line) => line.includes('API listening'));
  const baseUrl = /http:\/\/[\d.]+:\d+/.exec(listening)?.[0];
  if (!baseUrl) throw new Error(`cannot find the API address in: ${listening}`);
  await Promise.all(workers.map((worker) => worker.waitForLine((line) => line.includes('worker started'))));
  say(`API at ${baseUrl}, 2 workers ready`);
  const metricsPorts = workers.map((worker) => {
    const line = worker.lines.find((entry) => entry.includes('"worker started"'));
    return line ? (JSON.parse(line) as { metricsPort?: number }).metricsPort : undefined;
  });
  say(`watch the jobs live in the console: ${baseUrl}/console  (queues: ${baseUrl}/admin/queues)`);
  say(
    `metrics: ${baseUrl}/metrics (API), ${metricsPorts.map((port) => `http://127.0.0.1:${port}/metrics`).join(', ')} (workers)`,
  );

  const submitted = await Promise.all(
    mode.runs.map(async (run) => {
      const response = await fetch(`${baseUrl}/v1/jobs`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ preset: run.preset, messages: [{ role: 'user', content: run.prompt }] }),
      });
      const job = (await response.json()) as JobView;
      if (response.status !== 202)
        throw new Error(`POST /v1/jobs answered ${response.status}: ${JSON.stringify(job)}`);
      say(`submitted ${job.id} (preset ${run.preset}): "${run.prompt}"`);
      return { job, started: Date.now() };
    }),
  );

  const reports = await Promise.all(
    submitted.map(async ({ job, started }) => {
      let seenLayers = 0;
      for (;;) {
        const current = (await (await fetch(`${baseUrl}/v1/jobs/${job.id}`)).json()) as JobView;
        for (const layer of current.layers.slice(seenLayers)) {
          const failed = layer.calls.filter((call) => call.status === 'failed').length;
          say(
            `${job.id}: layer ${layer.layer} (${layer.role}) finished in ${layer.duration_ms} ms, ` +
              `${layer.calls.length - failed}/${layer.calls.length} calls ok`,
          );
        }
        seenLayers = current.layers.length;
        if (['completed', 'failed', 'cancelled'].includes(current.status)) {
          return { job: current, elapsedMs: Date.now() - started };
        }
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    }),
  );

  for (const report of reports) console.log(renderJob(report.job, report.elapsedMs));
  if (mode.kind === 'simulated') {
    console.log(
      '\n[demo] These answers are SIMULATED by the bundled fake provider; set TOGETHER_API_KEY for real ones.',
    );
  }
  if (keepRunning) {
    say(`still running (--keep): open ${baseUrl}/console; press Ctrl-C to stop everything`);
    await new Promise<void>((resolve) => process.once('SIGINT', () => resolve()));
  }
  say('done: stopping the API, the workers and anything else the demo started');
}

/** `npm run demo -- --keep` leaves the stack up after the requests, for the console and metrics. */
const keepRunning = process.argv.includes('--keep');

let exitCode = 0;
try {
  await main();
} catch (error) {
  console.error(`[demo] failed: ${error instanceof Error ? error.message : String(error)}`);
  exitCode = 1;
} finally {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
}
process.exit(exitCode);
