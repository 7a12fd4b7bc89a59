import { DEFAULT_BATCH_ITEM_GRACE_MS, parseEnvironment, SHARED_ENVIRONMENT } from '@moa-queue/contract';
import { loadMoaConfig, type MoaConfig } from '@moa-queue/moa';
import { z } from 'zod';

const environmentSchema = z.object({
  ...SHARED_ENVIRONMENT,
  METRICS_PORT: z.coerce.number().int().min(0).max(65535).default(9464),
  METRICS_HOST: z.string().min(1).default('0.0.0.0'),
  WORKER_CONCURRENCY: z.coerce.number().int().min(1).max(10_000).default(50),
  SHUTDOWN_GRACE_MS: z.coerce.number().int().min(0).default(60_000),
  WORKER_LOCK_DURATION_MS: z.coerce.number().int().min(1000).default(30_000),
  WORKER_STALLED_INTERVAL_MS: z.coerce.number().int().min(500).default(15_000),
  WORKER_MAX_STALLED_COUNT: z.coerce.number().int().min(1).default(5),
  WORKER_RECONCILE_INTERVAL_MS: z.coerce.number().int().min(1000).default(60_000),
  BATCH_ITEM_GRACE_MS: z.coerce.number().int().min(0).default(DEFAULT_BATCH_ITEM_GRACE_MS),
});

/** Everything the worker process reads from its environment, validated. */
export interface WorkerConfig {
  redisUrl: string;
  metricsPort: number;
  metricsHost: string;
  queuePrefix: string;
  concurrency: number;
  shutdownGraceMs: number;
  /** Stalled-job detection: see the worker options in moa-worker.ts for why these defaults. */
  lockDurationMs: number;
  stalledIntervalMs: number;
  maxStalledCount: number;
  /** How often the batch reconciler runs (batches/batch-reconciler.ts). @defaultValue 60000 */
  reconcileIntervalMs?: number;
  /**
   * How long a batch item's request stays readable once its line is in the
   * batch; then it is removed (batches/batch-item-sweeper.ts, at the
   * reconciler's pass). @defaultValue 600000
   */
  batchItemGraceMs?: number;
  logLevel: string;
  webhookSecret: string | undefined;
  /** `MOA_FILES_DIR`: batch files' content on disk there; undefined keeps it in Redis. */
  filesDir?: string | undefined;
  moa: MoaConfig;
}

/**
 * Reads and validates the worker's environment; the only place the worker
 * touches `process.env` for settings. Throws naming the bad variable.
 */
export function loadWorkerConfig(environment: NodeJS.ProcessEnv = process.env): WorkerConfig {
  const values = parseEnvironment(environmentSchema, environment);
  return {
    redisUrl: values.REDIS_URL,
    metricsPort: values.METRICS_PORT,
    metricsHost: values.METRICS_HOST,
    queuePrefix: values.MOA_QUEUE_PREFIX,
    concurrency: values.WORKER_CONCURRENCY,
    shutdownGraceMs: values.SHUTDOWN_GRACE_MS,
    lockDurationMs: values.WORKER_LOCK_DURATION_MS,
    stalledIntervalMs: values.WORKER_STALLED_INTERVAL_MS,
    maxStalledCount: values.WORKER_MAX_STALLED_COUNT,
    reconcileIntervalMs: values.WORKER_RECONCILE_INTERVAL_MS,
    batchItemGraceMs: values.BATCH_ITEM_GRACE_MS,
    logLevel: values.LOG_LEVEL,
    webhookSecret: values.MOA_WEBHOOK_SECRET,
    filesDir: values.MOA_FILES_DIR,
    moa: loadMoaConfig(values.MOA_CONFIG),
  };
}
