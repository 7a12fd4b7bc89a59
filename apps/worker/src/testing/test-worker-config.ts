import type { WorkerConfig } from '../config.js';

/**
 * A worker config for tests that start a worker in process: no metrics
 * port, silent logs, the default lock and stall timings, and a stalled job
 * failed after one stall. A test gives its Redis, prefix and MoA config,
 * and overrides only what it is about.
 */
export function testWorkerConfig(
  options: Pick<WorkerConfig, 'redisUrl' | 'queuePrefix' | 'moa'> & Partial<WorkerConfig>,
): WorkerConfig {
  return {
    metricsPort: 0,
    metricsHost: '127.0.0.1',
    concurrency: 4,
    shutdownGraceMs: 5000,
    lockDurationMs: 30_000,
    stalledIntervalMs: 15_000,
    maxStalledCount: 1,
    logLevel: 'silent',
    webhookSecret: undefined,
    ...options,
  };
}
