/**
 * Scenario: offline batches. A 1,000-line and a 10,000-line batch through the
 * Batch API against the fake provider (real API, worker, fake provider and
 * redis-server processes). Reports wall time, items per second, peak RSS of
 * the API and of each worker, and Redis memory per item, so one can see that
 * the processes' memory stays flat as a batch grows (state is in Redis).
 * Then the issue's demo: an 805-instruction AlpacaEval file through
 * `moa batch`, its progress lines saved to bench/results/alpaca-805.log.
 *
 * Run: node --conditions=development --import tsx bench/batch-memory.ts
 * (BENCH_BATCH_SIZES=1000,10000 and BENCH_ALPACA=0 to skip the demo.)
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPOSITORY_ROOT } from '@moa-queue/test-support';
import OpenAI, { toFile } from 'openai';
import { startBenchStack, type BenchStack } from './support/bench-stack.js';
import { rssMiB } from './support/process-stats.js';
import { printTable, writeResult } from './support/report.js';

const SIZES = (process.env.BENCH_BATCH_SIZES ?? '1000,10000').split(',').map(Number);
const LATENCY_MS = 5;
const WORKERS = 2;

type BatchWithMoa = OpenAI.Batches.Batch & { moa: { cost_usd: number; cancelled: number } };

async function usedMemory(stack: BenchStack): Promise<number> {
  const info = await stack.redis.info('memory');
  return Number(/used_memory:(\d+)/.exec(info)?.[1] ?? 0);
}

function inputFile(lines: number): Buffer {
  const text = Array.from({ length: lines }, (_, index) =>
    JSON.stringify({
      custom_id: `item-${index}`,
      method: 'POST',
      url: '/v1/chat/completions',
      body: {
        model: 'bench',
        messages: [{ role: 'user', content: `Dataset prompt number ${index}: explain one idea.` }],
      },
    }),
  ).join('\n');
  return Buffer.from(`${text}\n`);
}

async function measure(lines: number) {
  const stack = await startBenchStack({
    workers: WORKERS,
    latencyMs: LATENCY_MS,
    agents: 3,
    proposerLayers: 1,
  });
  const client = new OpenAI({
    baseURL: `${stack.apiUrl}/v1`,
    apiKey: 'unused',
    maxRetries: 0,
    timeout: 600_000,
  });
  const apiPid = stack.api.child.pid!;
  const workerPids = stack.workers.map((worker) => worker.child.pid!);
  try {
    // Warm up: one small batch, so each process has loaded its code and connections.
    const warm = await client.files.create({
      file: await toFile(inputFile(20), 'warm.jsonl'),
      purpose: 'batch',
    });
    const warmBatch = await client.batches.create({
      input_file_id: warm.id,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
    });
    while ((await client.batches.retrieve(warmBatch.id)).status !== 'completed')
      await new Promise((r) => setTimeout(r, 100));

    const baseline = { api: rssMiB(apiPid), workers: workerPids.map(rssMiB), redis: await usedMemory(stack) };
    const peak = { api: baseline.api, workers: [...baseline.workers], redis: baseline.redis };
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        peak.api = Math.max(peak.api, rssMiB(apiPid));
        workerPids.forEach(
          (pid, index) => (peak.workers[index] = Math.max(peak.workers[index]!, rssMiB(pid))),
        );
        peak.redis = Math.max(peak.redis, await usedMemory(stack));
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    })();

    const started = performance.now();
    const content = inputFile(lines);
    const file = await client.files.create({ file: await toFile(content, 'input.jsonl'), purpose: 'batch' });
    const uploaded = performance.now();
    const created = await client.batches.create({
      input_file_id: file.id,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
    });
    const accepted = performance.now();
    let batch = created as BatchWithMoa;
    while (!['completed', 'failed', 'expired', 'cancelled'].includes(batch.status)) {
      await new Promise((resolve) => setTimeout(resolve, 250));
      batch = (await client.batches.retrieve(created.id)) as BatchWithMoa;
    }
    const finished = performance.now();
    const output = await (await client.files.content(batch.output_file_id!)).text();
    const downloaded = performance.now();
    sampling = false;
    await sampler;
    const after = await usedMemory(stack);
    const outputLines = output.trim().split('\n').length;
    return {
      lines,
      status: batch.status,
      completed: batch.request_counts?.completed ?? 0,
      failed: batch.request_counts?.failed ?? 0,
      outputLines,
      inputBytes: content.length,
      outputBytes: Buffer.byteLength(output),
      uploadSeconds: (uploaded - started) / 1000,
      validateAndEnqueueSeconds: (accepted - uploaded) / 1000,
      wallSeconds: (finished - started) / 1000,
      itemsPerSecond: lines / ((finished - uploaded) / 1000),
      downloadSeconds: (downloaded - finished) / 1000,
      apiRssMiB: { baseline: baseline.api, peak: peak.api },
      workerRssMiB: workerPids.map((_, index) => ({
        baseline: baseline.workers[index]!,
        peak: peak.workers[index]!,
      })),
      redisBytesPerItem: {
        peakDuringRun: (peak.redis - baseline.redis) / lines,
        afterCompletion: (after - baseline.redis) / lines,
      },
      costUsd: batch.moa.cost_usd,
    };
  } finally {
    await stack.stop();
  }
}

/** The demo: 805 AlpacaEval-format instructions through `moa batch`, progress lines kept. */
async function alpacaDemo() {
  const stack = await startBenchStack({ workers: WORKERS, latencyMs: 20, agents: 3, proposerLayers: 2 });
  const directory = mkdtempSync(join(tmpdir(), 'moa-alpaca-'));
  try {
    const datasets = ['helpful_base', 'koala', 'oasst', 'selfinstruct', 'vicuna'];
    const instructions = Array.from({ length: 805 }, (_, index) => ({
      instruction: `AlpacaEval-style instruction ${index}: write a short, helpful answer about topic ${index % 37}.`,
      dataset: datasets[index % datasets.length],
    }));
    const input = join(directory, 'alpaca_eval.json');
    const out = join(directory, 'model_outputs.json');
    writeFileSync(input, JSON.stringify(instructions, null, 2));
    const started = performance.now();
    const child = spawn(
      process.execPath,
      [join(REPOSITORY_ROOT, 'apps/cli/bin/moa.js'), 'batch', input, '-o', out, '--preset', 'bench'],
      {
        env: {
          ...process.env,
          MOA_API_URL: stack.apiUrl,
          MOA_CLI_FROM_SOURCE: '1',
          MOA_POLL_INTERVAL_MS: '1000',
        },
        stdio: ['ignore', 'inherit', 'pipe'],
      },
    );
    let log = '';
    child.stderr.on('data', (chunk: Buffer) => {
      log += chunk.toString();
      process.stderr.write(chunk);
    });
    const code = await new Promise((resolve) => child.once('close', resolve));
    const seconds = (performance.now() - started) / 1000;
    const outputs = JSON.parse(readFileSync(out, 'utf8')) as {
      instruction: string;
      output: string;
      generator: string;
      dataset: string;
    }[];
    writeFileSync(
      join(REPOSITORY_ROOT, 'bench', 'results', 'alpaca-805.log'),
      `$ moa batch alpaca_eval.json -o model_outputs.json --preset bench\n${log}`,
    );
    return { code, seconds, entries: outputs.length, first: outputs[0] };
  } finally {
    rmSync(directory, { recursive: true, force: true });
    await stack.stop();
  }
}

const rows = [];
for (const size of SIZES) rows.push(await measure(size));
printTable(
  rows.map((row) => ({
    lines: row.lines,
    status: row.status,
    wall_s: row.wallSeconds.toFixed(1),
    items_per_s: row.itemsPerSecond.toFixed(0),
    enqueue_s: row.validateAndEnqueueSeconds.toFixed(2),
    api_rss_MiB: `${row.apiRssMiB.baseline.toFixed(0)}→${row.apiRssMiB.peak.toFixed(0)}`,
    worker_rss_MiB: row.workerRssMiB
      .map((worker) => `${worker.baseline.toFixed(0)}→${worker.peak.toFixed(0)}`)
      .join(' '),
    redis_B_per_item: `${row.redisBytesPerItem.peakDuringRun.toFixed(0)} peak, ${row.redisBytesPerItem.afterCompletion.toFixed(0)} after`,
  })),
);
const demo = process.env.BENCH_ALPACA === '0' ? undefined : await alpacaDemo();
if (demo)
  console.log(
    `AlpacaEval demo: exit ${String(demo.code)}, ${demo.entries} entries in ${demo.seconds.toFixed(1)} s`,
  );
console.log(
  `wrote ${writeResult('batch-memory', { workers: WORKERS, latencyMs: LATENCY_MS, preset: '3 proposers + aggregator', rows, alpacaDemo: demo })}`,
);
