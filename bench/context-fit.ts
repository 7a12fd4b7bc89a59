/**
 * `npm run bench:context-fit`: what measuring and fitting prompts costs a
 * plan. Times `planLayer` (which fits every call into its model's context
 * window, `fit-to-context.ts`) against the same plan without windows (no
 * prompt is measured), in this process, for: an aggregator given 6
 * references of 400 words that fit its window; the same 6 cut to fit a small
 * window; a layer of 6 proposers each given the 6 references; a first layer
 * of 6 proposers sent a 1,000,000-character message that fits no window.
 * Writes bench/results/context-fit.json.
 */
import { generateAnswer } from '@moa-queue/fake-provider';
import { planLayer, type LayerRecord, type PlanLayerOptions, type PresetConfig } from '@moa-queue/moa';
import { percentile } from './support/process-stats.js';
import { printTable, writeResult } from './support/report.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 200);
const agent = (model: string, maxTokens: number) => ({ model, temperature: 0.7, maxTokens });
const proposers = Array.from({ length: 6 }, (_, index) => agent(`fake/proposer-${index}`, 512));
const preset: PresetConfig = {
  name: 'bench',
  layers: [proposers, proposers],
  aggregator: agent('fake/aggregator', 2048),
  minProposers: 1,
  layerTimeoutMs: 0,
  referencePrompt: 'Synthesize these answers into one reply.',
  referenceFormat: 'tagged',
};
const question = [{ role: 'user' as const, content: 'Name three uses of a Mixture-of-Agents pipeline.' }];
// 400 lorem words per answer, as the fake provider writes them (about 475 o200k_base tokens each).
const previous: LayerRecord = {
  layer: 2,
  role: 'proposer',
  startedAt: 0,
  finishedAt: 0,
  durationMs: 0,
  calls: proposers.map((proposer, agentIndex) => ({
    model: proposer.model,
    agentIndex,
    status: 'completed',
    output: generateAnswer(proposer.model, question, { outputWords: 400 }).content,
    usage: { promptTokens: 0, completionTokens: 0 },
    costUsd: null,
    latencyMs: 0,
    attempts: 1,
    startedAt: 0,
    finishedAt: 0,
    finishReason: 'stop',
    error: null,
  })),
};
const huge = [{ role: 'user' as const, content: 'lorem ipsum dolor sit amet '.repeat(37_038) }];

const window = (tokens: number): PlanLayerOptions => ({ contextWindowOf: () => tokens });
const scenarios = [
  {
    name: 'aggregator, 6 x 400-word references, fits 32,768',
    layer: 3,
    messages: question,
    options: window(32_768),
  },
  {
    name: 'aggregator, 6 x 400-word references, cut to 4,096',
    layer: 3,
    messages: question,
    options: window(4096),
  },
  {
    name: '6 proposers, each 6 x 400-word references, fit 32,768',
    layer: 2,
    messages: question,
    options: window(32_768),
  },
  {
    name: '6 proposers, a 1,000,000-character message, fit none',
    layer: 1,
    messages: huge,
    options: window(32_768),
  },
];

function timeMs(run: () => unknown): number[] {
  for (let warm = 0; warm < 5; warm += 1) run();
  return Array.from({ length: RUNS }, () => {
    const started = performance.now();
    run();
    return performance.now() - started;
  });
}

const rows = scenarios.map((scenario) => {
  const layerRecord = scenario.layer === 1 ? undefined : previous;
  const runs = scenario.layer === 1 ? Math.max(5, Math.floor(RUNS / 20)) : RUNS;
  const measure = (options: PlanLayerOptions) => {
    const samples = timeMs(() =>
      planLayer(preset, scenario.layer, scenario.messages, layerRecord, options),
    ).slice(0, runs);
    return { median: percentile(samples, 0.5), p95: percentile(samples, 0.95) };
  };
  const plain = measure({});
  const fitted = measure(scenario.options);
  const [first] = planLayer(preset, scenario.layer, scenario.messages, layerRecord, scenario.options);
  return {
    scenario: scenario.name,
    'no window (ms, median)': plain.median.toFixed(3),
    'fitted (ms, median)': fitted.median.toFixed(3),
    'fitted (ms, p95)': fitted.p95.toFixed(3),
    'added (ms, median)': (fitted.median - plain.median).toFixed(3),
    outcome: first?.notSent ? 'not sent' : `${first?.contextFit.referencesCut?.length ?? 0} references cut`,
  };
});
printTable(rows);
console.log(`\nwrote ${writeResult('context-fit', { runs: RUNS, rows })}`);
