import { createRedisUpGauge } from '@moa-queue/contract';
import { collectDefaultMetrics, Counter, Histogram, Registry } from 'prom-client';

/** LLM latency buckets in seconds; they reach 20 minutes because long answers from slow providers do. */
export const LLM_LATENCY_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1200];
const LAYER_LATENCY_BUCKETS = [0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1200];
const COST_BUCKETS = [0.00001, 0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1];

/** The metrics a worker process exports on `METRICS_PORT` (DESIGN §5). */
export interface WorkerMetrics {
  registry: Registry;
  llmRequestDuration: Histogram<'provider' | 'model' | 'layer' | 'role' | 'outcome'>;
  llmTokens: Counter<'provider' | 'model' | 'layer' | 'role' | 'type'>;
  llmCost: Counter<'provider' | 'model' | 'layer' | 'role'>;
  llmCostUnknown: Counter<'model'>;
  llmRetries: Counter<'provider' | 'model' | 'reason'>;
  llmFinishReasons: Counter<'provider' | 'model' | 'reason'>;
  layerDuration: Histogram<'preset' | 'layer' | 'role'>;
  layerCost: Histogram<'preset' | 'layer' | 'role'>;
  jobsFinished: Counter<'preset' | 'outcome'>;
  jobDuration: Histogram<'preset' | 'outcome'>;
  jobCost: Histogram<'preset'>;
  policyStops: Counter<'preset' | 'reason'>;
  webhookDeliveries: Counter<'outcome'>;
}

/** Options of {@link createWorkerMetrics}. */
export interface WorkerMetricsOptions {
  /**
   * The worker's view of Redis (its connection state logger), exported as
   * `moa_redis_up`. @defaultValue none: the gauge is not exported
   */
  health?: { readonly healthy: boolean };
}

/** Creates the worker's registry with every metric and the default process metrics. */
export function createWorkerMetrics(options: WorkerMetricsOptions = {}): WorkerMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const registers = [registry];
  const health = options.health;
  if (health) createRedisUpGauge({ registry, serving: () => health.healthy });
  return {
    registry,
    llmRequestDuration: new Histogram({
      name: 'moa_llm_request_duration_seconds',
      help: 'Duration of one LLM provider call attempt',
      labelNames: ['provider', 'model', 'layer', 'role', 'outcome'],
      buckets: LLM_LATENCY_BUCKETS,
      registers,
    }),
    llmTokens: new Counter({
      name: 'moa_llm_tokens_total',
      help: 'Tokens used by LLM calls',
      labelNames: ['provider', 'model', 'layer', 'role', 'type'],
      registers,
    }),
    llmCost: new Counter({
      name: 'moa_llm_cost_usd_total',
      help: 'Cost of LLM calls in USD',
      labelNames: ['provider', 'model', 'layer', 'role'],
      registers,
    }),
    llmCostUnknown: new Counter({
      name: 'moa_llm_cost_unknown_total',
      help: 'LLM calls to a model with no configured price',
      labelNames: ['model'],
      registers,
    }),
    llmRetries: new Counter({
      name: 'moa_llm_retries_total',
      help: 'LLM call retries, by reason',
      labelNames: ['provider', 'model', 'reason'],
      registers,
    }),
    llmFinishReasons: new Counter({
      name: 'moa_llm_finish_reasons_total',
      help: 'LLM answers by finish reason (stop, length, content_filter, tool_calls, other, unknown)',
      labelNames: ['provider', 'model', 'reason'],
      registers,
    }),
    layerDuration: new Histogram({
      name: 'moa_layer_duration_seconds',
      help: 'Duration of a MoA layer, from adding its calls to having all their results',
      labelNames: ['preset', 'layer', 'role'],
      buckets: LAYER_LATENCY_BUCKETS,
      registers,
    }),
    layerCost: new Histogram({
      name: 'moa_layer_cost_usd',
      help: 'Cost of a MoA layer in USD',
      labelNames: ['preset', 'layer', 'role'],
      buckets: COST_BUCKETS,
      registers,
    }),
    policyStops: new Counter({
      name: 'moa_policy_stops_total',
      help: 'Requests whose layers a policy cut short (early stop on agreement, or the cost cap), by reason',
      labelNames: ['preset', 'reason'],
      registers: [registry],
    }),
    jobsFinished: new Counter({
      name: 'moa_jobs_finished_total',
      help: 'MoA requests finished, by outcome',
      labelNames: ['preset', 'outcome'],
      registers,
    }),
    jobDuration: new Histogram({
      name: 'moa_job_duration_seconds',
      help: 'Duration of a MoA request from acceptance to its end',
      labelNames: ['preset', 'outcome'],
      buckets: LAYER_LATENCY_BUCKETS,
      registers,
    }),
    jobCost: new Histogram({
      name: 'moa_job_cost_usd',
      help: 'Cost of a MoA request in USD',
      labelNames: ['preset'],
      buckets: COST_BUCKETS,
      registers,
    }),
    webhookDeliveries: new Counter({
      name: 'moa_webhook_deliveries_total',
      help: 'Webhook delivery attempts, by outcome',
      labelNames: ['outcome'],
      registers,
    }),
  };
}
