import request from 'supertest';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { JobView } from '@moa-queue/api';
import {
  metricsPortOf,
  parseMetrics,
  startMoaStack,
  sumOf,
  type MetricSample,
  type MoaStack,
} from './support/moa-stack.js';

const USER = [{ role: 'user', content: 'Count my tokens, please.' }];

describe('Prometheus metrics agree with the jobs', () => {
  let stack: MoaStack;
  let jobs: JobView[];
  let worker: MetricSample[];
  let api: MetricSample[];

  beforeAll(async () => {
    stack = await startMoaStack({ name: 'metrics', redisUrl: inject('redisUrl'), workers: 2 });
    stack.fake.setBehaviour('dead', { failStatus: 400 });
    const submit = async (body: Record<string, unknown>) => stack.waitFor((await stack.submit(body)).id);
    const three = await Promise.all(
      Array.from({ length: 4 }, () => submit({ preset: 'three', messages: USER })),
    );
    stack.fake.script('beta', { status: 500 });
    const retried = await submit({ preset: 'three', messages: USER });
    stack.fake.script('gamma', { status: 429, retryAfterSeconds: 1 });
    const started = Date.now();
    const rateLimited = await submit({ preset: 'three', messages: USER });
    const rateLimitedMs = Date.now() - started;
    expect(rateLimitedMs).toBeGreaterThanOrEqual(1000);
    const oneDead = await submit({ preset: 'one-dead', messages: USER });
    const unpriced = await submit({ preset: 'unpriced', messages: USER });
    jobs = [...three, retried, rateLimited, oneDead, unpriced];
    expect(jobs.every((job) => job.status === 'completed')).toBe(true);

    const texts = await Promise.all(
      stack.workers.map(async (process) =>
        (await fetch(`http://127.0.0.1:${metricsPortOf(process)}/metrics`)).text(),
      ),
    );
    worker = texts.flatMap(parseMetrics);
    // Both workers did some of the calls.
    for (const text of texts)
      expect(sumOf(parseMetrics(text), 'moa_llm_request_duration_seconds_count')).toBeGreaterThan(0);
    api = parseMetrics((await request(stack.app).get('/metrics')).text);
  });
  afterAll(async () => {
    await stack?.stop();
  });

  const calls = () =>
    jobs.flatMap((job) =>
      job.layers.flatMap((layer) => layer.calls.map((call) => ({ ...call, layer, job }))),
    );

  it('counts every call by layer, role and outcome', () => {
    for (const layer of ['1', '2', '3']) {
      for (const role of ['proposer', 'aggregator']) {
        const completed = calls().filter(
          (call) =>
            String(call.layer.layer) === layer && call.layer.role === role && call.status === 'completed',
        ).length;
        expect(
          sumOf(worker, 'moa_llm_request_duration_seconds_count', { layer, role, outcome: 'success' }),
        ).toBe(completed);
      }
    }
    // The dead proposer, the scripted 500 and the scripted 429 each failed one attempt.
    expect(sumOf(worker, 'moa_llm_request_duration_seconds_count', { outcome: 'error' })).toBe(3);
    expect(
      sumOf(worker, 'moa_llm_request_duration_seconds_count', { model: 'fake/dead', outcome: 'error' }),
    ).toBe(1);
  });

  it("counts every answer's finish reason, as the call records say it", () => {
    const answered = calls().filter((call) => call.status === 'completed');
    expect(answered.every((call) => call.finish_reason === 'stop')).toBe(true);
    expect(sumOf(worker, 'moa_llm_finish_reasons_total')).toBe(answered.length);
    expect(sumOf(worker, 'moa_llm_finish_reasons_total', { reason: 'stop' })).toBe(answered.length);
    expect(sumOf(worker, 'moa_llm_finish_reasons_total', { model: 'fake/aggregator', reason: 'stop' })).toBe(
      jobs.length,
    );
  });

  it('token and cost counters equal the sums on the job objects', () => {
    const prompt = calls().reduce((sum, call) => sum + call.usage.prompt_tokens, 0);
    const completion = calls().reduce((sum, call) => sum + call.usage.completion_tokens, 0);
    expect(sumOf(worker, 'moa_llm_tokens_total', { type: 'input' })).toBe(prompt);
    expect(sumOf(worker, 'moa_llm_tokens_total', { type: 'output' })).toBe(completion);
    const cost = calls().reduce((sum, call) => sum + (call.cost_usd ?? 0), 0);
    expect(Math.abs(sumOf(worker, 'moa_llm_cost_usd_total') - cost)).toBeLessThan(1e-9);
    const pricedJobs = jobs.filter((job) => job.cost_usd !== null);
    const layerCost = sumOf(worker, 'moa_layer_cost_usd_sum');
    expect(
      Math.abs(
        layerCost -
          pricedJobs.reduce((sum, job) => sum + job.cost_usd!, 0) -
          pricedLayerCostOf(jobs.filter((job) => job.cost_usd === null)),
      ),
    ).toBeLessThan(1e-9);
  });

  it('observes every layer once per job, the aggregator included, and each job once', () => {
    for (const preset of ['three', 'one-dead', 'unpriced']) {
      const count = jobs.filter((job) => job.preset === preset).length;
      const layers = preset === 'unpriced' ? 2 : 3;
      for (let layer = 1; layer <= layers; layer += 1) {
        const role = layer === layers ? 'aggregator' : 'proposer';
        expect(
          sumOf(worker, 'moa_layer_duration_seconds_count', { preset, layer: String(layer), role }),
        ).toBe(count);
      }
      expect(sumOf(worker, 'moa_jobs_finished_total', { preset, outcome: 'completed' })).toBe(count);
      expect(sumOf(worker, 'moa_job_duration_seconds_count', { preset, outcome: 'completed' })).toBe(count);
    }
  });

  it('counts retries by reason and calls to unpriced models', () => {
    expect(sumOf(worker, 'moa_llm_retries_total', { model: 'fake/beta', reason: 'server_error' })).toBe(1);
    expect(sumOf(worker, 'moa_llm_retries_total', { model: 'fake/gamma', reason: 'rate_limit' })).toBe(1);
    expect(sumOf(worker, 'moa_llm_cost_unknown_total', { model: 'fake/unpriced' })).toBe(1);
    const gamma = jobs[5]!.layers
      .flatMap((layer) => layer.calls)
      .filter((call) => call.model === 'fake/gamma');
    // A 429 is not an attempt.
    expect(gamma.map((call) => call.attempts)).toEqual([1, 1]);
  });

  it('LLM latency buckets reach at least 600 s, and no label holds a job id or user text', () => {
    const buckets = worker
      .filter((sample) => sample.name === 'moa_llm_request_duration_seconds_bucket')
      .map((sample) => Number(sample.labels.le));
    expect(Math.max(...buckets.filter(Number.isFinite))).toBeGreaterThanOrEqual(600);
    for (const sample of [...worker, ...api]) {
      for (const value of Object.values(sample.labels)) {
        expect(value).not.toMatch(/job_/);
        expect(value).not.toContain('Count my tokens');
      }
    }
  });

  it('the API exports bullmq_job_count for every queue and HTTP metrics by route', () => {
    expect(sumOf(api, 'bullmq_job_count', { queue: 'moa-requests', state: 'completed' })).toBe(jobs.length);
    const queues = new Set(
      api.filter((sample) => sample.name === 'bullmq_job_count').map((sample) => sample.labels.queue),
    );
    expect([...queues]).toEqual(
      expect.arrayContaining(['moa-requests', 'moa-llm-fake', 'moa-webhooks', 'moa-deadlines']),
    );
    expect(sumOf(api, 'moa_http_requests_total', { route: '/v1/jobs', method: 'POST', status: '202' })).toBe(
      jobs.length,
    );
    expect(sumOf(api, 'moa_http_requests_total', { route: '/v1/jobs/:id' })).toBeGreaterThan(0);
    expect(api.some((sample) => sample.name === 'process_cpu_user_seconds_total')).toBe(true);
  });
});

/** Cost of the priced calls of jobs whose total is unknown: layer costs count them per layer when known. */
function pricedLayerCostOf(jobs: JobView[]): number {
  return jobs
    .flatMap((job) => job.layers)
    .filter((layer) =>
      layer.calls.every(
        (call) => call.cost_usd !== null || call.usage.prompt_tokens + call.usage.completion_tokens === 0,
      ),
    )
    .reduce((sum, layer) => sum + layer.calls.reduce((inner, call) => inner + (call.cost_usd ?? 0), 0), 0);
}
