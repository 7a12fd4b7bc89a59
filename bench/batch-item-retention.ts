/**
 * Scenario: what a finished batch leaves in Redis per item (issue 15, item
 * 2). One batch of BENCH_ITEMS lines (200) through the Batch API against the
 * fake provider (real API, worker, fake provider and redis-server
 * processes; a preset of 2 proposer layers of 3 and an aggregator, 7 calls
 * an item). Measured when the batch has completed, then again once the
 * items' grace (`BATCH_ITEM_GRACE_MS`, BENCH_GRACE_MS here: 60 s, longer than the
 * batch takes, so the first snapshot has every item) and a
 * reconciler pass (every second here) have passed: the keys that name an
 * item's request (its job, call jobs, markers), their bytes (`MEMORY
 * USAGE`), the entries of the queues' finished sets and of the tenant's
 * request index that name one, and Redis `used_memory` and `DBSIZE` over
 * the whole run.
 *
 * Run: npm run bench:batch-item-retention (BENCH_ITEMS, BENCH_GRACE_MS,
 * BENCH_SETTLE_MS: how long to wait after the grace, 15 s).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { batchItemRequestId, REQUESTS_QUEUE } from '@moa-queue/contract';
import type { Redis } from 'ioredis';
import OpenAI, { toFile } from 'openai';
import { startBenchStack } from './support/bench-stack.js';
import { printTable, writeResult } from './support/report.js';

const ITEMS = Number(process.env.BENCH_ITEMS ?? 200);
const GRACE_MS = Number(process.env.BENCH_GRACE_MS ?? 60_000);
const SETTLE_MS = Number(process.env.BENCH_SETTLE_MS ?? 15_000);
const PREFIX = 'bench';

interface Snapshot {
  /** Keys whose name holds an item's request id (job, call jobs, locks, markers, streams). */
  itemKeys: number;
  itemKeyBytes: number;
  /** Members of the queues' completed and failed sets that are an item or one of its calls. */
  finishedEntries: number;
  /** Entries of the tenant's request index (the console's job list) that are items. */
  indexEntries: number;
  dbsize: number;
  usedMemory: number;
  /** Every key's bytes (`MEMORY USAGE`) summed by kind: the key with ids and numbers made generic. */
  bytesByKind: Record<string, number>;
}

async function snapshot(redis: Redis, requestIds: string[]): Promise<Snapshot> {
  const ids = new Set(requestIds);
  // The request id is the key's last segment, or what precedes `-L<k>-A<i>` (a call) or `:lock` etc.
  const itemOf = (key: string): string | undefined => {
    const match = /(job_[A-Za-z0-9]+x\d+)(?:$|[-:])/.exec(key);
    return match && ids.has(match[1]!) ? match[1] : undefined;
  };
  let itemKeys = 0;
  let itemKeyBytes = 0;
  let finishedEntries = 0;
  const bytesByKind: Record<string, number> = {};
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'COUNT', 1000);
    cursor = next;
    for (const key of keys) {
      const kind = key
        .replace(/job_[A-Za-z0-9]+x\d+/, '<item>')
        .replace(/(batch|file)[-_][A-Za-z0-9]+/, '<$1>')
        .replace(/-L\d+-A\d+/, '-<call>');
      bytesByKind[kind] = (bytesByKind[kind] ?? 0) + ((await redis.memory('USAGE', key)) ?? 0);
      if (itemOf(key)) {
        itemKeys += 1;
        itemKeyBytes += (await redis.memory('USAGE', key)) ?? 0;
      } else if (key.endsWith(':completed') || key.endsWith(':failed')) {
        if ((await redis.type(key)) !== 'zset') continue;
        const members = await redis.zrange(key, 0, -1);
        finishedEntries += members.filter((member) => itemOf(member) !== undefined).length;
      }
    }
  } while (cursor !== '0');
  const index = await redis.zrange(`${PREFIX}:moa-tenant-requests:default`, 0, -1);
  const info = await redis.info('memory');
  return {
    itemKeys,
    itemKeyBytes,
    finishedEntries,
    indexEntries: index.filter((id) => ids.has(id)).length,
    dbsize: await redis.dbsize(),
    bytesByKind: Object.fromEntries(Object.entries(bytesByKind).sort(([, left], [, right]) => right - left)),
    usedMemory: Number(/used_memory:(\d+)/.exec(info)?.[1] ?? 0),
  };
}

const stack = await startBenchStack({
  workers: 1,
  latencyMs: 5,
  agents: 3,
  proposerLayers: 2,
  workerEnv: { BATCH_ITEM_GRACE_MS: String(GRACE_MS), WORKER_RECONCILE_INTERVAL_MS: '1000' },
});
try {
  const client = new OpenAI({ baseURL: `${stack.apiUrl}/v1`, apiKey: 'none', maxRetries: 0 });
  const empty = await snapshot(stack.redis, []);
  const lines = Array.from({ length: ITEMS }, (_, index) =>
    JSON.stringify({
      custom_id: `item-${index}`,
      method: 'POST',
      url: '/v1/chat/completions',
      body: { model: 'bench', messages: [{ role: 'user', content: `Question ${index}: explain queues.` }] },
    }),
  );
  const file = await client.files.create({
    file: await toFile(Buffer.from(lines.join('\n')), 'items.jsonl'),
    purpose: 'batch',
  });
  let batch = await client.batches.create({
    input_file_id: file.id,
    endpoint: '/v1/chat/completions',
    completion_window: '24h',
  });
  const started = Date.now();
  while (!['completed', 'failed', 'expired', 'cancelled'].includes(batch.status)) {
    await sleep(250);
    batch = await client.batches.retrieve(batch.id);
  }
  if (batch.status !== 'completed') throw new Error(`batch ended ${batch.status}`);
  const completedAfterMs = Date.now() - started;
  const requestIds = Array.from({ length: ITEMS }, (_, index) => batchItemRequestId(batch.id, index));
  const atCompletion = await snapshot(stack.redis, requestIds);
  // The lines' promise, checked against the clock of this process.
  const output = (await (await client.files.content(batch.output_file_id!)).text()).trim().split('\n');
  const expiries = output.map(
    (line) =>
      (JSON.parse(line) as { response: { request_id_expires_at?: number } }).response.request_id_expires_at,
  );
  const latest = Math.max(...expiries.map((value) => value ?? 0)) * 1000;
  await sleep(Math.max(0, latest - Date.now()) + SETTLE_MS);
  const afterGrace = await snapshot(stack.redis, requestIds);
  const stillReadable = (await fetch(`${stack.apiUrl}/v1/jobs/${requestIds[0]}`)).status;

  const perItem = (value: number) => (value / ITEMS).toFixed(2);
  const row = (name: string, value: Snapshot) => ({
    when: name,
    'item keys': value.itemKeys,
    'keys/item': perItem(value.itemKeys),
    'item key bytes/item': perItem(value.itemKeyBytes),
    'finished-set entries': value.finishedEntries,
    'index entries': value.indexEntries,
    dbsize: value.dbsize,
    'used_memory/item (over empty)': perItem(value.usedMemory - empty.usedMemory),
  });
  console.log(
    `${ITEMS} items, grace ${GRACE_MS} ms: completed after ${completedAfterMs} ms; every line has request_id_expires_at: ${expiries.every((value) => Number.isInteger(value))}; GET /v1/jobs/<item 0> after the grace: ${stillReadable}`,
  );
  printTable([row('empty', empty), row('batch completed', atCompletion), row('after the grace', afterGrace)]);
  console.log('largest kinds of key after the grace (bytes):');
  for (const [kind, bytes] of Object.entries(afterGrace.bytesByKind).slice(0, 8))
    console.log(`  ${bytes}  ${kind}`);
  const path = writeResult('batch-item-retention', {
    items: ITEMS,
    graceMs: GRACE_MS,
    settleMs: SETTLE_MS,
    queue: REQUESTS_QUEUE,
    completedAfterMs,
    getAfterGrace: stillReadable,
    empty,
    atCompletion,
    afterGrace,
  });
  console.log(`wrote ${path}`);
} finally {
  await stack.stop();
}
