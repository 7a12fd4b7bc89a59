/**
 * Redis memory per MoA request: runs N requests (2 proposer layers of 3 +
 * an aggregator) to completion and reports used_memory growth per request:
 * right after completion, and 10 minutes later, when the finished call jobs'
 * retention and the finished requests' event streams have run out (what
 * stays for the request's own retention, 7 days). Time is not waited for:
 * the bench removes what Redis or BullMQ would have removed by then (keys
 * whose TTL runs out within 10 minutes, finished call jobs). Once per answer
 * size: BENCH_OUTPUT_WORDS=40,400 (the default; real answers run to 300–500
 * words), BENCH_REQUESTS=1000 per size. It also reports what one request's
 * text is (prompt and answers, as UTF-8 bytes) and where the bytes are, by
 * key pattern.
 */
import { Queue } from 'bullmq';
import { startBenchStack, submitJob } from './support/bench-stack.js';
import { printTable, writeResult } from './support/report.js';

const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 1000);
const OUTPUT_WORDS = (process.env.BENCH_OUTPUT_WORDS ?? '40,400').split(',').map(Number);

/** How far ahead "10 minutes later" looks: the finished call jobs' retention. */
const RETENTION_HORIZON_MS = 10 * 60 * 1000;

async function* everyKey(stack: Awaited<ReturnType<typeof startBenchStack>>): AsyncGenerator<string> {
  let cursor = '0';
  do {
    const [next, keys] = await stack.redis.scan(cursor, 'MATCH', 'bench:*', 'COUNT', 1000);
    cursor = next;
    yield* keys;
  } while (cursor !== '0');
}

/** Bytes held under each key pattern (ids replaced by `<id>`), largest first. */
async function bytesByPattern(stack: Awaited<ReturnType<typeof startBenchStack>>) {
  const totals = new Map<string, number>();
  for await (const key of everyKey(stack)) {
    const bytes = Number(await stack.redis.memory('USAGE', key, 'SAMPLES', 0));
    const pattern = key.replace(/job_[A-Za-z0-9]+/g, '<id>');
    totals.set(pattern, (totals.get(pattern) ?? 0) + bytes);
  }
  return [...totals].sort((left, right) => right[1] - left[1]);
}

/** The text one finished request produced: its prompt and every call's answer, in UTF-8 bytes (mean). */
async function textPerRequest(stack: Awaited<ReturnType<typeof startBenchStack>>): Promise<number> {
  const queue = new Queue('moa-requests', {
    connection: stack.redis,
    prefix: 'bench',
    skipMetasUpdate: true,
  });
  try {
    const jobs = await queue.getJobs(['completed'], 0, 99);
    let bytes = 0;
    for (const job of jobs) {
      const data = job.data as { messages: { content: string }[] };
      const progress = job.progress as { layers: { calls: { output: string | null }[] }[] };
      for (const message of data.messages) bytes += Buffer.byteLength(message.content);
      for (const layer of progress.layers) {
        for (const call of layer.calls) bytes += Buffer.byteLength(call.output ?? '');
      }
    }
    return bytes / Math.max(jobs.length, 1);
  } finally {
    await queue.close();
  }
}

/** Removes every key that would expire within `horizonMs`, as Redis would have by then. */
async function expireWithin(stack: Awaited<ReturnType<typeof startBenchStack>>, horizonMs: number) {
  for await (const key of everyKey(stack)) {
    const ttl = await stack.redis.pttl(key);
    if (ttl >= 0 && ttl <= horizonMs) await stack.redis.del(key);
  }
}

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
  const queue = new Queue('moa-requests', {
    connection: stack.redis,
    prefix: 'bench',
    skipMetasUpdate: true,
  });
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
    const atCompletion = await bytesByPattern(stack);
    const text = await textPerRequest(stack);
    // Ten minutes later: finished call jobs (kept 10 minutes at most) and every key that expires by then are gone.
    const llm = new Queue('moa-llm-fake', {
      connection: stack.redis,
      prefix: 'bench',
      skipMetasUpdate: true,
    });
    while ((await llm.clean(0, 10_000, 'completed')).length > 0);
    await llm.close();
    await expireWithin(stack, RETENTION_HORIZON_MS);
    const retained = await usedMemory(stack);
    const retainedPerRequest = (retained - before) / REQUESTS;
    const row = {
      'words per answer': outputWords,
      requests: REQUESTS,
      'text per request (KiB)': (text / 1024).toFixed(1),
      'used_memory before (MiB)': (before / 2 ** 20).toFixed(1),
      'after (MiB)': (after / 2 ** 20).toFixed(1),
      'peak (MiB)': (peak / 2 ** 20).toFixed(1),
      'KiB per request, just finished': (perRequest / 1024).toFixed(1),
      'KiB per request, 10 minutes later': (retainedPerRequest / 1024).toFixed(1),
    };
    console.log(`where the bytes are just after completion, ${outputWords}-word answers (KiB per request):`);
    printTable(
      atCompletion.slice(0, 8).map(([pattern, bytes]) => ({
        keys: pattern,
        'KiB per request': (bytes / REQUESTS / 1024).toFixed(2),
      })),
    );
    const record = {
      outputWords,
      requests: REQUESTS,
      textBytesPerRequest: text,
      before,
      after,
      peak,
      bytesPerRequest: perRequest,
      retained,
      retainedBytesPerRequest: retainedPerRequest,
      bytesByPattern: Object.fromEntries(atCompletion),
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
