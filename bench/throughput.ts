/**
 * Scenario 2, throughput: hundreds of concurrent MoA requests (2 proposer
 * layers of 3 agents + an aggregator, every call 50 ms) with 1, 2 and 4
 * worker processes. Reports MoA requests and LLM calls per second, CPU per
 * request (every process of the stack) and Redis commands per request.
 * BENCH_REQUESTS (1500), BENCH_WORKERS (1,2,4), BENCH_OUTPUT_WORDS (40; 400
 * for realistic answers), BENCH_PROFILE=<dir> (V8 CPU profiles of the workers).
 */
import { Queue } from 'bullmq';
import { startBenchStack, redisCommandCount, submitJob } from './support/bench-stack.js';
import { commandBreakdown, topCommands } from './support/command-breakdown.js';
import { cpuSeconds } from './support/process-stats.js';
import { printTable, writeResult } from './support/report.js';

const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 1500);
/** Words of every fake answer: 40 by default; real answers run to 300–500 (BENCH_OUTPUT_WORDS=400). */
const OUTPUT_WORDS = Number(process.env.BENCH_OUTPUT_WORDS ?? 40);
const LATENCY_MS = 50;
const CALLS_PER_REQUEST = 7;
const WORKER_COUNTS = (process.env.BENCH_WORKERS ?? '1,2,4').split(',').map(Number);
const SUBMIT_CONCURRENCY = 32;

interface Row {
  workers: number;
  seconds: number;
  requestsPerSecond: number;
  callsPerSecond: number;
  cpuMsPerRequest: number;
  redisCommandsPerRequest: number;
  completed: number;
  topCommands: { command: string; perRequest: number }[];
  cpuMsPerRequestByProcess: Record<string, number>;
}

async function measure(workers: number): Promise<Row> {
  const stack = await startBenchStack({
    workers,
    latencyMs: LATENCY_MS,
    agents: 3,
    proposerLayers: 2,
    outputWords: OUTPUT_WORDS,
    // Every request is submitted before most have finished: the tenant's active-jobs quota
    // (1,000 by default) must not turn the measurement into one of 429s.
    config: { quotas: { maxActiveJobs: REQUESTS + 100 } },
  });
  const queue = new Queue('moa-requests', {
    connection: stack.redis,
    prefix: 'bench',
    skipMetasUpdate: true,
  });
  try {
    const post = (index: number) => submitJob(stack.apiUrl, `Throughput question ${index}`);
    // Warm up every process (JIT, connections) before measuring.
    await Promise.all(Array.from({ length: 20 }, (_, index) => post(index)));
    await waitForCompleted(queue, 20);

    const pids = [stack.api, ...stack.workers, stack.fake].map((child) => child.child.pid!);
    pids.push(stack.redisServer.process.pid!);
    const cpuBefore = pids.map(cpuSeconds);
    const commandsBefore = await redisCommandCount(stack.redis);
    const breakdownBefore = await commandBreakdown(stack.redis);
    const started = performance.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: SUBMIT_CONCURRENCY }, async () => {
        while (next < REQUESTS) await post(20 + next++);
      }),
    );
    await waitForCompleted(queue, 20 + REQUESTS);
    const seconds = (performance.now() - started) / 1000;
    const commands = (await redisCommandCount(stack.redis)) - commandsBefore;
    const breakdown = topCommands(breakdownBefore, await commandBreakdown(stack.redis), REQUESTS, 40);
    const cpuDeltas = pids.map((pid, index) => cpuSeconds(pid) - cpuBefore[index]!);
    const cpu = cpuDeltas.reduce((sum, value) => sum + value, 0);
    const names = ['api', ...stack.workers.map((_, index) => `worker${index + 1}`), 'fake-provider', 'redis'];
    const cpuMsPerRequestByProcess = Object.fromEntries(
      names.map((name, index) => [name, Math.round((cpuDeltas[index]! * 1000 * 10) / REQUESTS) / 10]),
    );
    const counts = await queue.getJobCounts('completed', 'failed');
    return {
      workers,
      seconds,
      requestsPerSecond: REQUESTS / seconds,
      callsPerSecond: (REQUESTS * CALLS_PER_REQUEST) / seconds,
      cpuMsPerRequest: (cpu * 1000) / REQUESTS,
      // The bench's own polling (one getJobCounts every 50 ms) is included; it is small.
      redisCommandsPerRequest: commands / REQUESTS,
      completed: (counts.completed ?? 0) - 20,
      topCommands: breakdown,
      cpuMsPerRequestByProcess,
    };
  } finally {
    await queue.close();
    await stack.stop();
  }
}

async function waitForCompleted(queue: Queue, count: number): Promise<void> {
  const deadline = Date.now() + 300_000;
  for (;;) {
    const counts = await queue.getJobCounts('completed', 'failed');
    if ((counts.failed ?? 0) > 0) throw new Error(`${counts.failed} requests failed`);
    if ((counts.completed ?? 0) >= count) return;
    if (Date.now() > deadline) throw new Error(`only ${counts.completed} of ${count} completed`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

console.log(
  `throughput: ${REQUESTS} requests of ${CALLS_PER_REQUEST} calls (${LATENCY_MS} ms each, ${OUTPUT_WORDS}-word answers), workers ${WORKER_COUNTS.join(', ')}`,
);
const rows: Row[] = [];
for (const workers of WORKER_COUNTS) rows.push(await measure(workers));
printTable(
  rows.map((row) => ({
    workers: row.workers,
    'MoA req/s': row.requestsPerSecond.toFixed(1),
    'LLM calls/s': row.callsPerSecond.toFixed(0),
    'CPU ms/req': row.cpuMsPerRequest.toFixed(1),
    'Redis cmds/req': row.redisCommandsPerRequest.toFixed(1),
    seconds: row.seconds.toFixed(2),
  })),
);
console.log(
  'CPU ms per request by process:',
  rows.map((row) => JSON.stringify(row.cpuMsPerRequestByProcess)).join(' | '),
);
console.log('Redis commands per request, top (1-worker run):');
printTable(
  (rows[0]?.topCommands ?? []).map((entry) => ({
    command: entry.command,
    'per request': entry.perRequest.toFixed(1),
  })),
);
console.log(
  `results: ${writeResult(OUTPUT_WORDS === 40 ? 'throughput' : `throughput-${OUTPUT_WORDS}-words`, {
    scenario: 'throughput',
    requests: REQUESTS,
    latencyMs: LATENCY_MS,
    outputWords: OUTPUT_WORDS,
    rows,
  })}`,
);
