/**
 * Scenario 1, orchestration overhead: a request of 2 proposer layers of 3
 * agents plus an aggregator, every call 200 ms, sent one at a time through
 * the full stack (HTTP API → Redis → workers → fake provider), against the
 * in-process runMoa on the same fake provider, interleaved in the same run.
 */
import { createModelRegistry, parseMoaConfig, runMoa } from '@moa-queue/moa';
import { readFileSync } from 'node:fs';
import { percentile } from './support/process-stats.js';
import { startBenchStack } from './support/bench-stack.js';
import { printTable, writeResult } from './support/report.js';

const LATENCY_MS = 200;
const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 30);
const WARMUP = 3;
const CRITICAL_PATH_MS = 3 * LATENCY_MS;

const stack = await startBenchStack({ workers: 2, latencyMs: LATENCY_MS, agents: 3, proposerLayers: 2 });
try {
  const config = parseMoaConfig(JSON.parse(readFileSync(stack.configPath, 'utf8')));
  const preset = config.presets.bench!;
  const models = createModelRegistry(config, { env: {} });
  const baseline: number[] = [];
  const queued: number[] = [];
  console.log(`overhead: ${REQUESTS} requests each way (+${WARMUP} warm-up), every call ${LATENCY_MS} ms`);
  for (let index = 0; index < WARMUP + REQUESTS; index += 1) {
    const messages = [
      { role: 'user' as const, content: `Question number ${index}: what limits MoA latency?` },
    ];
    let started = performance.now();
    const local = await runMoa({ preset, messages, models });
    const baselineMs = performance.now() - started;
    if (local.status !== 'completed')
      throw new Error(`in-process run failed: ${JSON.stringify(local.error)}`);

    started = performance.now();
    const response = await fetch(`${stack.apiUrl}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'bench', messages }),
    });
    await response.json();
    const queuedMs = performance.now() - started;
    if (response.status !== 200) throw new Error(`queued run failed: HTTP ${response.status}`);
    if (index >= WARMUP) {
      baseline.push(baselineMs);
      queued.push(queuedMs);
    }
  }
  const summary = (values: number[]) => ({ median: percentile(values, 0.5), p95: percentile(values, 0.95) });
  const base = summary(baseline);
  const full = summary(queued);
  const rows = [
    {
      path: 'in-process runMoa (baseline)',
      'median ms': base.median.toFixed(1),
      'p95 ms': base.p95.toFixed(1),
      'ratio to baseline': '1.000',
      'ratio to 600 ms critical path': (base.median / CRITICAL_PATH_MS).toFixed(3),
    },
    {
      path: 'full stack (HTTP + BullMQ)',
      'median ms': full.median.toFixed(1),
      'p95 ms': full.p95.toFixed(1),
      'ratio to baseline': (full.median / base.median).toFixed(3),
      'ratio to 600 ms critical path': (full.median / CRITICAL_PATH_MS).toFixed(3),
    },
  ];
  printTable(rows);
  const path = writeResult('overhead', {
    scenario: 'overhead',
    latencyMs: LATENCY_MS,
    requests: REQUESTS,
    criticalPathMs: CRITICAL_PATH_MS,
    baseline: base,
    queued: full,
    ratioMedian: full.median / base.median,
    ratioP95: full.p95 / base.p95,
    ratioToCriticalPath: full.median / CRITICAL_PATH_MS,
    samples: { baseline, queued },
  });
  console.log(`results: ${path}`);
} finally {
  await stack.stop();
}
