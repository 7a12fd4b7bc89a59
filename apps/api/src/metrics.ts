import type { MoaQueues } from '@moa-queue/contract';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

/** BullMQ states reported by `bullmq_job_count`. */
export const QUEUE_STATES = [
  'waiting',
  'prioritized',
  'active',
  'waiting-children',
  'delayed',
  'completed',
  'failed',
] as const;

/** The API process's metrics: HTTP traffic and queue depth (DESIGN §5). */
export interface ApiMetrics {
  registry: Registry;
  httpRequests: Counter<'method' | 'route' | 'status'>;
  httpDuration: Histogram<'method' | 'route' | 'status'>;
}

/**
 * Creates the API's registry. `bullmq_job_count` is computed at scrape time
 * from Redis, so every API replica reports the same shared truth.
 */
export function createApiMetrics(queues: MoaQueues): ApiMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const registers = [registry];
  new Gauge({
    name: 'bullmq_job_count',
    help: 'Jobs per BullMQ queue and state, read from Redis at scrape time',
    labelNames: ['queue', 'state'],
    registers,
    async collect() {
      const counts = await Promise.all(
        queues
          .all()
          .map(async (queue) => ({ queue: queue.name, counts: await queue.getJobCounts(...QUEUE_STATES) })),
      );
      this.reset();
      for (const { queue, counts: byState } of counts) {
        for (const state of QUEUE_STATES) this.set({ queue, state }, byState[state] ?? 0);
      }
    },
  });
  return {
    registry,
    httpRequests: new Counter({
      name: 'moa_http_requests_total',
      help: 'HTTP requests served by the API',
      labelNames: ['method', 'route', 'status'],
      registers,
    }),
    httpDuration: new Histogram({
      name: 'moa_http_request_duration_seconds',
      help: 'HTTP request duration in the API',
      labelNames: ['method', 'route', 'status'],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
      registers,
    }),
  };
}
