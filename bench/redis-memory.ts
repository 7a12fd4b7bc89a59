/**
 * Redis memory per MoA request: runs N requests (2 proposer layers of 3 +
 * an aggregator) to completion and reports used_memory growth per request:
 * right after completion (call jobs still kept, 10 minutes by default) and
 * once they have aged out (the request itself and its results are kept 7
 * days). Once per answer size: BENCH_OUTPUT_WORDS=40,400 (the default; real
 * answers run to 300–500 words), BENCH_REQUESTS=1000 per size.
 */
import { Queue } from 'bullmq';
import { startBenchStack, submitJob } from './support/bench-stack.js';
import { printTable, writeResult } from './support/report.js';

const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 1000);
const OUTPUT_WORDS = (process.env.BENCH_OUTPUT_WORDS ?? '40,400').split(',').map(Number);

async function usedMemory(stack: Awaited<ReturnType<typeof startBenchStack>>): Promise<number> {
  const info = await stack.redis.info('memory');
  return Number(/used_memory:(\d+)/.exec(info)?.[1] ?? 0);
}

/** One run at `outputWords` words per answer: its row and its result record. */
async function measure(outputWords: number) {
  const stack = await startBenchStack({
    workers: 2,
    latencyMs: 10,
    agents: 3,
    proposerLayers: 2,
    outputWords,
  });
  const queue = new Queue('moa-requests', { connection: stack.redis, prefix: 'bench' });
  try {
    const post = (index: number) =>
      submitJob(
        stack.apiUrl,
        `Memory question ${index}: a typical 20-word prompt about queues and the mixture of agents.`,
      );
    await post(-1);
    await new Promise((resolve) => setTimeout(resolve, 500));
    const before = await usedMemory(stack);
    let next = 0;
    let peak = before;
    const sampler = setInterval(() => {
      void usedMemory(stack).then((value) => (peak = Math.max(peak, value)));
    }, 100);
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (next < REQUESTS) await post(next++);
      }),
    );
    for (;;) {
      const counts = await queue.getJobCounts('completed', 'failed');
      if ((counts.completed ?? 0) + (counts.failed ?? 0) >= REQUESTS + 1) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    clearInterval(sampler);
    const after = await usedMemory(stack);
    const perRequest = (after - before) / REQUESTS;
    // What stays for the request's retention (7 days) once its call jobs have aged out (10 minutes).
    const llm = new Queue('moa-llm-fake', { connection: stack.redis, prefix: 'bench' });
    while ((await llm.clean(0, 10_000, 'completed')).length > 0);
    await llm.close();
    const retained = await usedMemory(stack);
    const retainedPerRequest = (retained - before) / REQUESTS;
    // And once the finished requests' event streams have expired (an hour after 'done').
    for (const key of await stack.redis.keys('bench:moa-events:*')) await stack.redis.del(key);
    const longTerm = await usedMemory(stack);
    const longTermPerRequest = (longTerm - before) / REQUESTS;
    const row = {
      'words per answer': outputWords,
      requests: REQUESTS,
      'used_memory before (MiB)': (before / 2 ** 20).toFixed(1),
      'after (MiB)': (after / 2 ** 20).toFixed(1),
      'peak (MiB)': (peak / 2 ** 20).toFixed(1),
      'KiB per request, call jobs kept': (perRequest / 1024).toFixed(1),
      'KiB per request after call retention': (retainedPerRequest / 1024).toFixed(1),
      'KiB per request after events expire': (longTermPerRequest / 1024).toFixed(1),
    };
    const record = {
      outputWords,
      requests: REQUESTS,
      before,
      after,
      peak,
      bytesPerRequest: perRequest,
      retained,
      retainedBytesPerRequest: retainedPerRequest,
      longTerm,
      longTermBytesPerRequest: longTermPerRequest,
    };
    return { row, record };
  } finally {
    await queue.close();
    await stack.stop();
  }
}

const runs = [];
for (const words of OUTPUT_WORDS) runs.push(await measure(words));
printTable(runs.map((run) => run.row));
console.log(
  `results: ${writeResult('redis-memory', { scenario: 'redis-memory', runs: runs.map((run) => run.record) })}`,
);
