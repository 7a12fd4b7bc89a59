import { Gauge, type Registry } from 'prom-client';

/** Options of {@link createRedisUpGauge}. */
export interface RedisUpGaugeOptions {
  /** The registry that exports it. */
  registry: Registry;
  /**
   * Whether Redis serves this process at scrape time: reads and writes both
   * (a Redis at `maxmemory` answers reads but refuses writes, which is an
   * outage for a queue). Called once per scrape; may be async, e.g. to wait
   * for a read the same scrape makes anyway.
   */
  serving: () => boolean | Promise<boolean>;
}

/**
 * `moa_redis_up` (DESIGN §5), exported by the API and by every worker: 1
 * while Redis serves this process, 0 during an outage as the process sees it
 * (unreachable, paused, full, read-only). A process keeps answering
 * `/metrics` through an outage, so an operator sees the outage here, and the
 * 503s it causes in the HTTP metrics, instead of a scrape failure that reads
 * like the process itself is down.
 *
 * Each process decides by its own connection state
 * (`createConnectionStateLogger`, whose bounded probe notices a paused
 * Redis); the API also by its scrape-time read of the queue counts.
 */
export function createRedisUpGauge(options: RedisUpGaugeOptions): Gauge {
  return new Gauge({
    name: 'moa_redis_up',
    help: 'Whether Redis serves this process (reads and writes): 1 yes, 0 during an outage',
    registers: [options.registry],
    async collect() {
      this.set((await options.serving()) ? 1 : 0);
    },
  });
}
