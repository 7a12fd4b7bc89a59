import { DEFAULT_QUEUE_PREFIX } from '@moa-queue/contract';
import { loadMoaConfig, type MoaConfig } from '@moa-queue/moa';
import { z } from 'zod';

const environmentSchema = z.object({
  REDIS_URL: z.string().url().default('redis://127.0.0.1:6379'),
  METRICS_PORT: z.coerce.number().int().min(0).max(65535).default(9464),
  METRICS_HOST: z.string().min(1).default('0.0.0.0'),
  MOA_CONFIG: z.string().min(1).optional(),
  MOA_QUEUE_PREFIX: z.string().min(1).default(DEFAULT_QUEUE_PREFIX),
  WORKER_CONCURRENCY: z.coerce.number().int().min(1).max(10_000).default(50),
  SHUTDOWN_GRACE_MS: z.coerce.number().int().min(0).default(60_000),
  WORKER_LOCK_DURATION_MS: z.coerce.number().int().min(1000).default(30_000),
  WORKER_STALLED_INTERVAL_MS: z.coerce.number().int().min(500).default(15_000),
  WORKER_MAX_STALLED_COUNT: z.coerce.number().int().min(1).default(5),
  MOA_WEBHOOK_SECRET: z
    .string()
    .regex(/^whsec_[A-Za-z0-9+/]+={0,2}$/, 'must be whsec_ followed by base64')
    .optional(),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});

/** Everything the worker process reads from its environment, validated. */
export interface WorkerConfig {
  redisUrl: string;
  metricsPort: number;
  metricsHost: string;
  queuePrefix: string;
  concurrency: number;
  shutdownGraceMs: number;
  /** Stalled-job detection: see STALLED_SETTINGS in moa-worker.ts for why these defaults. */
  lockDurationMs: number;
  stalledIntervalMs: number;
  maxStalledCount: number;
  logLevel: string;
  webhookSecret: string | undefined;
  moa: MoaConfig;
}

/**
 * Reads and validates the worker's environment; the only place the worker
 * touches `process.env` for settings. Throws naming the bad variable.
 */
export function loadWorkerConfig(environment: NodeJS.ProcessEnv = process.env): WorkerConfig {
  const parsed = environmentSchema.safeParse(environment);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new Error(`Invalid environment: ${String(issue?.path[0])}: ${issue?.message}`);
  }
  const values = parsed.data;
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
    logLevel: values.LOG_LEVEL,
    webhookSecret: values.MOA_WEBHOOK_SECRET,
    moa: loadMoaConfig(values.MOA_CONFIG),
  };
}
