import { createMoaQueues, type MoaQueues } from '@moa-queue/contract';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { startMoaWorker, type MoaWorker, type MoaWorkerOptions } from '../moa-worker.js';
import type { WorkerConfig } from '../config.js';
import { testWorkerConfig } from './test-worker-config.js';

/** A worker started in process for one test file, with a connection and the queues on its prefix. */
export interface WorkerTestHarness {
  worker: MoaWorker;
  redis: Redis;
  queues: MoaQueues;
  /** Closes the worker and the queues, deletes every key of the prefix, disconnects. */
  close(): Promise<void>;
}

/** Options of {@link startWorkerTestHarness}. */
export interface WorkerTestHarnessOptions
  extends
    Pick<WorkerConfig, 'redisUrl' | 'queuePrefix' | 'moa'>,
    Partial<Pick<MoaWorkerOptions, 'logger' | 'models'>> {
  /** The providers whose LLM queues the test adds to or reads. */
  providers: string[];
}

/**
 * Starts a worker in process (no metrics port, no preset-model check, silent
 * logs unless a logger is given) with `testWorkerConfig`, and opens the
 * queues a test adds jobs to: what every worker suite that drives a worker
 * in process sets up, and takes down with `close`.
 */
export async function startWorkerTestHarness(options: WorkerTestHarnessOptions): Promise<WorkerTestHarness> {
  const { redisUrl, queuePrefix, moa, providers } = options;
  const worker = await startMoaWorker({
    config: testWorkerConfig({ redisUrl, queuePrefix, moa }),
    logger: options.logger ?? pino({ level: 'silent' }),
    ...(options.models ? { models: options.models } : {}),
    serveMetrics: false,
    presetModelsCheck: false,
  });
  const redis = new Redis(redisUrl, { maxRetriesPerRequest: null });
  const queues = createMoaQueues({ connection: redis, prefix: queuePrefix, providers });
  return {
    worker,
    redis,
    queues,
    async close() {
      await worker.close();
      await queues.close();
      const keys = await redis.keys(`${queuePrefix}:*`);
      if (keys.length > 0) await redis.del(...keys);
      redis.disconnect();
    },
  };
}
