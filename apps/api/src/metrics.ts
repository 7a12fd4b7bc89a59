import { createRedisUpGauge, isInfrastructureError, withTimeout, type MoaQueues } from '@moa-queue/contract';
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

/** Options of {@link createApiMetrics}. */
export interface ApiMetricsOptions {
  /**
   * The process's view of Redis (`watchRedisHealth`): a failed read of the
   * queue counts is reported to it, and `moa_redis_up` is 0 while it says
   * Redis does not serve (a full Redis answers the counts but refuses writes).
   * @defaultValue none: only the scrape's own read decides `moa_redis_up`
   */
  health?: { readonly healthy: boolean; noteError(error: Error): void };
  /**
   * Longest wait for the queue counts: a scrape answers within it whatever
   * Redis does. (Each command has its own timeout too, but BullMQ waits for a
   * connection that has never been ready without one.)
   * @defaultValue 3000
   */
  readTimeoutMs?: number;
}

type QueueCounts = { queue: string; counts: Record<string, number> }[];

/**
 * Creates the API's registry. `bullmq_job_count` is computed at scrape time
 * from Redis, so every API replica reports the same shared truth.
 *
 * A scrape answers while Redis is down too: `bullmq_job_count` is then left
 * out (a stale count would be a lie) and `moa_redis_up` is 0, while the HTTP
 * metrics, which count the outage's 503s, and the process metrics are there.
 */
export function createApiMetrics(queues: MoaQueues, options: ApiMetricsOptions = {}): ApiMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const registers = [registry];
  const readTimeoutMs = options.readTimeoutMs ?? 3000;

  /** The counts of every queue, or undefined when Redis could not give them (in time). */
  async function readCounts(): Promise<QueueCounts | undefined> {
    try {
      return await withTimeout(
        Promise.all(
          queues
            .all()
            .map(async (queue) => ({ queue: queue.name, counts: await queue.getJobCounts(...QUEUE_STATES) })),
        ),
        readTimeoutMs,
      );
    } catch (error) {
      // Anything but Redis trouble is a bug: it fails the scrape (500), as before.
      if (!isInfrastructureError(error)) throw error;
      options.health?.noteError(error as Error);
      return undefined;
    }
  }
  // Both gauges of one scrape share its one read: prom-client runs their collects together.
  let reading: Promise<QueueCounts | undefined> | undefined;
  const scrapeCounts = () => (reading ??= readCounts().finally(() => (reading = undefined)));

  new Gauge({
    name: 'bullmq_job_count',
    help: 'Jobs per BullMQ queue and state, read from Redis at scrape time',
    labelNames: ['queue', 'state'],
    registers,
    async collect() {
      const counts = await scrapeCounts();
      this.reset();
      for (const { queue, counts: byState } of counts ?? []) {
        for (const state of QUEUE_STATES) this.set({ queue, state }, byState[state] ?? 0);
      }
    },
  });
  createRedisUpGauge({
    registry,
    serving: async () => (await scrapeCounts()) !== undefined && (options.health?.healthy ?? true),
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
