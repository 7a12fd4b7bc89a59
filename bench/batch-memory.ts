/**
 * Scenario: offline batches. First the validation of a 190 MB input file of
 * ~4 MB lines (each near the 4 MiB JSON body limit): how long `POST
 * /v1/batches` takes to answer, how long the worker's `validate` job takes,
 * and the peak RSS of the worker process doing it (its kernel high-water
 * mark, VmHWM, not a sample). Items are not run there: the requests queue is
 * paused while the file is validated, so the peak is validation's own, then
 * the batch is cancelled. Then a 1,000-line and a 10,000-line batch through
 * the Batch API against the fake provider (real API, worker, fake provider
 * and redis-server processes): wall time, items per second, peak RSS of the
 * API and of each worker, and Redis memory per item, so one can see that the
 * processes' memory stays flat as a batch grows (state is in Redis). Then
 * the issue's demo: an 805-instruction AlpacaEval file through `moa batch`,
 * its progress lines saved to bench/results/alpaca-805.log.
 *
 * Run: npm run bench:batch-memory (all of it) or npm run bench:batch-validation
 * (the 190 MB validation only). BENCH_BATCH_SIZES=1000,10000 sets the
 * batches (empty: none), BENCH_ALPACA=0 skips the demo, BENCH_BIG_FILE=0 the
 * 190 MB validation. BENCH_OUTPUT_WORDS (default 40) sets the words of every
 * fake answer (an output line carries every layer's answers), and
 * BENCH_FILE_STORES=redis,directory runs each batch size with files in Redis
 * and with MOA_FILES_DIR (default: redis only), BENCH_LATENCY_MS (default 5)
 * the fake provider's latency, e.g. the issue's BENCH_BATCH_SIZES=50000
 * BENCH_OUTPUT_WORDS=400 BENCH_LATENCY_MS=10 BENCH_FILE_STORES=redis,directory.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPOSITORY_ROOT } from '@moa-queue/test-support';
import { REQUESTS_QUEUE } from '@moa-queue/contract';
import { Queue } from 'bullmq';
import OpenAI, { toFile } from 'openai';
import { startBenchStack, type BenchStack } from './support/bench-stack.js';
import { rssMiB } from './support/process-stats.js';
import { printTable, writeResult } from './support/report.js';

const VALIDATION_ONLY = process.argv.includes('--validation-only');
const SIZES = VALIDATION_ONLY
  ? []
  : (process.env.BENCH_BATCH_SIZES ?? '1000,10000')
      .split(',')
      .filter((size) => size.trim() !== '')
      .map(Number);
const BIG_FILE = process.env.BENCH_BIG_FILE !== '0';
const ANSWER_WORDS = Number(process.env.BENCH_OUTPUT_WORDS ?? 40);
/** Runs comparing file stores or answer sizes go to a result of their own, beside the default run's. */
const RESULT_NAME = VALIDATION_ONLY
  ? 'batch-validation-memory'
  : process.env.BENCH_FILE_STORES || process.env.BENCH_OUTPUT_WORDS
    ? 'batch-memory-file-stores'
    : 'batch-memory';
const FILE_STORES = (process.env.BENCH_FILE_STORES ?? 'redis')
  .split(',')
  .map((store) => store.trim())
  .filter((store): store is 'redis' | 'directory' => store === 'redis' || store === 'directory');
/** Latency of every fake call: BENCH_LATENCY_MS, 5 ms by default (the dataset run: 10). */
const LATENCY_MS = Number(process.env.BENCH_LATENCY_MS ?? 5);
const WORKERS = 2;

/** The highest RSS a process has had so far (the kernel's VmHWM), in MiB. */
function peakRssMiB(pid: number): number {
  try {
    const match = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}

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

/** Streams a response body, counting its bytes and lines without holding it (an output file may be GBs). */
async function countLines(body: ReadableStream<Uint8Array>): Promise<{ bytes: number; lines: number }> {
  let bytes = 0;
  let lines = 0;
  for await (const piece of body as unknown as AsyncIterable<Uint8Array>) {
    bytes += piece.length;
    for (const byte of piece) if (byte === 0x0a) lines += 1;
  }
  return { bytes, lines };
}

async function measure(lines: number, store: 'redis' | 'directory') {
  const stack = await startBenchStack({
    workers: WORKERS,
    latencyMs: LATENCY_MS,
    agents: 3,
    proposerLayers: 1,
    outputWords: ANSWER_WORDS,
    ...(store === 'directory' ? { filesDir: 'temporary' } : {}),
  });
  const client = new OpenAI({
    baseURL: `${stack.apiUrl}/v1`,
    apiKey: 'unused',
    maxRetries: 3,
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
    let validated: number | undefined;
    while (!['completed', 'failed', 'expired', 'cancelled'].includes(batch.status)) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      batch = (await client.batches.retrieve(created.id)) as BatchWithMoa;
      if (validated === undefined && batch.status !== 'validating') validated = performance.now();
    }
    const finished = performance.now();
    const output = await countLines((await client.files.content(batch.output_file_id!)).body!);
    const downloaded = performance.now();
    sampling = false;
    await sampler;
    const after = await usedMemory(stack);
    return {
      lines,
      store,
      answerWords: ANSWER_WORDS,
      status: batch.status,
      completed: batch.request_counts?.completed ?? 0,
      failed: batch.request_counts?.failed ?? 0,
      outputLines: output.lines,
      inputBytes: content.length,
      outputBytes: output.bytes,
      uploadSeconds: (uploaded - started) / 1000,
      createSeconds: (accepted - uploaded) / 1000,
      validateAndEnqueueSeconds: ((validated ?? accepted) - uploaded) / 1000,
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

/** Characters per message and messages per line: a line of about 4.04 MB, under the 4 MiB body limit. */
const BIG_MESSAGE_CHARACTERS = 808_000;
const BIG_MESSAGES_PER_LINE = 5;

/**
 * The file: 190 MB of ~4 MB lines. 46 requests of five 808,000-character
 * messages each (4.04 MB a line, under the 4 MiB JSON body limit), and one
 * line of 4.5 MB, over the limit (it goes to the error file unread).
 */
function bigInputFile(): { content: Buffer; lines: number; requests: number } {
  const words = 'Summarize the following passage in one careful, complete paragraph. ';
  const text = words
    .repeat(Math.ceil(BIG_MESSAGE_CHARACTERS / words.length))
    .slice(0, BIG_MESSAGE_CHARACTERS);
  const requests = 46;
  const lines: string[] = [];
  for (let index = 0; index < requests; index += 1) {
    lines.push(
      JSON.stringify({
        custom_id: `big-${index}`,
        method: 'POST',
        url: '/v1/chat/completions',
        body: {
          model: 'bench',
          messages: Array.from({ length: BIG_MESSAGES_PER_LINE }, (_, part) => ({
            role: 'user',
            content: `${index}.${part} ${text}`.slice(0, BIG_MESSAGE_CHARACTERS),
          })),
        },
      }),
    );
  }
  lines.splice(
    23,
    0,
    JSON.stringify({
      custom_id: 'too-long',
      method: 'POST',
      url: '/v1/chat/completions',
      body: { model: 'bench', messages: [{ role: 'user', content: 'x'.repeat(4_500_000) }] },
    }),
  );
  return { content: Buffer.from(`${lines.join('\n')}\n`), lines: lines.length, requests };
}

/**
 * Validation of the 190 MB file by a worker whose requests queue is paused
 * (so its memory is validation's, not the items'): POST answer time,
 * validation time, and the worker's and the API's peak RSS.
 */
async function measureBigFileValidation() {
  const stack = await startBenchStack({ workers: 1, latencyMs: LATENCY_MS, agents: 3, proposerLayers: 1 });
  const client = new OpenAI({
    baseURL: `${stack.apiUrl}/v1`,
    apiKey: 'unused',
    maxRetries: 3,
    timeout: 600_000,
  });
  const requests = new Queue(REQUESTS_QUEUE, {
    connection: stack.redis,
    prefix: 'bench',
    skipMetasUpdate: true,
  });
  const apiPid = stack.api.child.pid!;
  const workerPid = stack.workers[0]!.child.pid!;
  try {
    await requests.pause();
    const { content, lines, requests: valid } = bigInputFile();
    const uploadStarted = performance.now();
    const file = await client.files.create({ file: await toFile(content, 'big.jsonl'), purpose: 'batch' });
    const uploadSeconds = (performance.now() - uploadStarted) / 1000;
    const before = {
      workerRss: rssMiB(workerPid),
      workerPeak: peakRssMiB(workerPid),
      apiRss: rssMiB(apiPid),
      redisBytes: await usedMemory(stack),
    };
    let apiPeak = before.apiRss;
    let workerPeakSampled = before.workerRss;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        apiPeak = Math.max(apiPeak, rssMiB(apiPid));
        workerPeakSampled = Math.max(workerPeakSampled, rssMiB(workerPid));
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    })();
    const posted = performance.now();
    const created = await client.batches.create({
      input_file_id: file.id,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
    });
    const answeredMs = performance.now() - posted;
    let batch = created as BatchWithMoa;
    while (batch.status === 'validating') {
      await new Promise((resolve) => setTimeout(resolve, 50));
      batch = (await client.batches.retrieve(created.id)) as BatchWithMoa;
    }
    const validationSeconds = (performance.now() - posted) / 1000;
    sampling = false;
    await sampler;
    const after = { workerPeak: peakRssMiB(workerPid), redisBytes: await usedMemory(stack) };
    const result = {
      workers: 1,
      fileBytes: content.length,
      lines,
      lineBytes: Math.round(content.length / lines),
      uploadSeconds,
      postAnswerMs: answeredMs,
      postAnswerStatus: created.status,
      validationSeconds,
      statusAfter: batch.status,
      requestCounts: batch.request_counts,
      expectedRequests: valid,
      workerRssMiB: {
        beforeValidation: before.workerRss,
        // The kernel's high-water mark of the process's RSS: start-up included, so it bounds validation's peak.
        peakHighWaterMark: after.workerPeak,
        peakHighWaterMarkBeforeValidation: before.workerPeak,
        peakSampledDuringValidation: workerPeakSampled,
      },
      apiRssMiB: { before: before.apiRss, peakSampledDuringValidation: apiPeak },
      redisBytesAdded: after.redisBytes - before.redisBytes,
    };
    // Nothing of it needs to run: cancel (the drain removes the waiting items), then let the queue go.
    await client.batches.cancel(created.id);
    while (!['cancelled', 'failed'].includes((await client.batches.retrieve(created.id)).status))
      await new Promise((resolve) => setTimeout(resolve, 200));
    return result;
  } finally {
    await requests.resume().catch(() => undefined);
    await requests.close();
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

const bigFile = BIG_FILE ? await measureBigFileValidation() : undefined;
if (bigFile) {
  console.log(
    `190 MB validation: ${(bigFile.fileBytes / 1e6).toFixed(1)} MB, ${bigFile.lines} lines of ${(bigFile.lineBytes / 1e6).toFixed(2)} MB; ` +
      `POST answered ${bigFile.postAnswerMs.toFixed(0)} ms (${bigFile.postAnswerStatus}); validated in ${bigFile.validationSeconds.toFixed(1)} s ` +
      `(${bigFile.statusAfter}, ${JSON.stringify(bigFile.requestCounts)}); worker RSS ${bigFile.workerRssMiB.beforeValidation.toFixed(0)} MiB before, ` +
      `peak ${bigFile.workerRssMiB.peakHighWaterMark.toFixed(0)} MiB (VmHWM; sampled ${bigFile.workerRssMiB.peakSampledDuringValidation.toFixed(0)}); ` +
      `API RSS ${bigFile.apiRssMiB.before.toFixed(0)} → ${bigFile.apiRssMiB.peakSampledDuringValidation.toFixed(0)} MiB`,
  );
}
const rows = [];
for (const size of SIZES) for (const store of FILE_STORES) rows.push(await measure(size, store));
printTable(
  rows.map((row) => ({
    lines: row.lines,
    store: row.store,
    words: row.answerWords,
    output_MB: (row.outputBytes / 1e6).toFixed(1),
    status: row.status,
    wall_s: row.wallSeconds.toFixed(1),
    items_per_s: row.itemsPerSecond.toFixed(0),
    create_ms: (row.createSeconds * 1000).toFixed(0),
    validated_s: row.validateAndEnqueueSeconds.toFixed(2),
    api_rss_MiB: `${row.apiRssMiB.baseline.toFixed(0)}→${row.apiRssMiB.peak.toFixed(0)}`,
    worker_rss_MiB: row.workerRssMiB
      .map((worker) => `${worker.baseline.toFixed(0)}→${worker.peak.toFixed(0)}`)
      .join(' '),
    redis_B_per_item: `${row.redisBytesPerItem.peakDuringRun.toFixed(0)} peak, ${row.redisBytesPerItem.afterCompletion.toFixed(0)} after`,
  })),
);
const demo = process.env.BENCH_ALPACA === '0' || VALIDATION_ONLY ? undefined : await alpacaDemo();
if (demo)
  console.log(
    `AlpacaEval demo: exit ${String(demo.code)}, ${demo.entries} entries in ${demo.seconds.toFixed(1)} s`,
  );
console.log(
  `wrote ${writeResult(RESULT_NAME, { workers: WORKERS, latencyMs: LATENCY_MS, preset: '3 proposers + aggregator', bigFileValidation: bigFile, rows, alpacaDemo: demo })}`,
);
