import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  BATCHES_QUEUE,
  createMoaQueues,
  DEADLINES_QUEUE,
  jobDataSchemasFor,
  llmQueueName,
  REQUESTS_QUEUE,
  WEBHOOKS_QUEUE,
  type RequestProgress,
} from '@moa-queue/contract';
import { backoffDelayMs, createModelRegistry, ProviderError, type ModelRegistry } from '@moa-queue/moa';
import { Worker } from 'bullmq';
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { recordBatchItemEnd } from './batches/batch-item-hook.js';
import { createBatchProcessor } from './batches/batch-processor.js';
import { createCallProcessor } from './call-processor.js';
import { listenForCancels } from './cancel-listener.js';
import { createDeadlineProcessor } from './deadline-processor.js';
import type { WorkerConfig } from './config.js';
import { metricLabelsFor } from './metric-labels.js';
import { startMetricsServer } from './metrics-server.js';
import { createWorkerMetrics, type WorkerMetrics } from './metrics.js';
import { createOrchestratorProcessor, enqueueWebhook } from './orchestrator-processor.js';
import { INVALID_JOB_DATA } from './parse-job-data.js';
import type { Resolver } from './webhooks/deliver-webhook.js';
import { createWebhookProcessor, webhookRetryDelayMs } from './webhooks/webhook-processor.js';

/** Options of {@link startMoaWorker}. */
export interface MoaWorkerOptions {
  config: WorkerConfig;
  logger: Logger;
  /** Resolves models; defaults to the real provider adapters. */
  models?: ModelRegistry;
  /** Whether to serve metrics on `config.metricsPort`. @defaultValue true */
  serveMetrics?: boolean;
  /** Resolves webhook hosts; tests inject one. @defaultValue the system resolver */
  webhookResolver?: Resolver;
}

/** A running worker process's parts. */
export interface MoaWorker {
  workers: Worker[];
  metrics: WorkerMetrics;
  metricsPort: number | undefined;
  /** Stops taking jobs, waits up to the grace period for running ones, then closes everything. */
  close(): Promise<void>;
}

/** Starts the orchestrator worker and one LLM-call worker per configured provider. */
export async function startMoaWorker(options: MoaWorkerOptions): Promise<MoaWorker> {
  const { config, logger } = options;
  const connection = new Redis(config.redisUrl, { maxRetriesPerRequest: null });
  connection.on('error', (error) => logger.warn({ error: error.message }, 'redis connection error'));
  // Our own commands go on a connection without BullMQ's scripts: ioredis builds
  // pipelines much faster there, and auto-pipelining batches concurrent commands.
  const commands = new Redis(config.redisUrl, { maxRetriesPerRequest: null, enableAutoPipelining: true });
  commands.on('error', (error) => logger.warn({ error: error.message }, 'redis connection error'));
  const providers = Object.keys(config.moa.providers);
  const queues = createMoaQueues({
    connection,
    prefix: config.queuePrefix,
    providers,
    onError: (error) => logger.warn({ error: error.message }, 'queue connection error'),
  });
  const metrics = createWorkerMetrics();
  const models = options.models ?? createModelRegistry(config.moa);

  const workerOptions = {
    connection,
    prefix: config.queuePrefix,
    concurrency: config.concurrency,
    // LLM calls are awaited I/O, so a 30 s lock renewed every 15 s is never
    // lost by a live worker, while a killed worker's jobs are found by the
    // stalled check and back in a queue within lockDuration + stalledInterval
    // (45 s by default). maxStalledCount 5 lets a request survive a worker
    // kill and a Redis restart in a row.
    lockDuration: config.lockDurationMs,
    stalledInterval: config.stalledIntervalMs,
    maxStalledCount: config.maxStalledCount,
  };
  const orchestrator = new Worker(
    REQUESTS_QUEUE,
    createOrchestratorProcessor({ queues, redis: commands, config: config.moa, metrics, logger }),
    workerOptions,
  );
  const callProcessor = createCallProcessor({
    config: config.moa,
    models,
    metrics,
    logger,
    redis: commands,
    prefix: config.queuePrefix,
    queueOf: (provider) => queues.llm(provider),
  });
  const callWorkers = providers.map((provider) => {
    const providerConfig = config.moa.providers[provider];
    return new Worker(llmQueueName(provider), callProcessor, {
      ...workerOptions,
      concurrency: Math.min(config.concurrency, providerConfig?.concurrency ?? config.concurrency),
      // Always a limiter: BullMQ honours a manual pause (queue.rateLimit after a 429)
      // only on queues whose workers have one. Without requestsPerMinute it never binds.
      limiter: providerConfig?.requestsPerMinute
        ? { max: providerConfig.requestsPerMinute, duration: 60_000 }
        : { max: 1_000_000_000, duration: 1000 },
      settings: {
        // Honour a provider's Retry-After on 5xx too; otherwise exponential backoff with jitter.
        backoffStrategy: (attemptsMade: number, _type?: string, error?: Error) =>
          error instanceof ProviderError && error.retryAfterMs !== undefined
            ? error.retryAfterMs
            : backoffDelayMs(attemptsMade),
      },
    });
  });
  const deadlineWorker = new Worker(
    DEADLINES_QUEUE,
    createDeadlineProcessor({ queues, redis: commands, config: config.moa, logger }),
    workerOptions,
  );
  const webhookWorker = new Worker(
    WEBHOOKS_QUEUE,
    createWebhookProcessor({
      queues,
      redis: commands,
      settings: config.moa.webhooks,
      secret: config.webhookSecret,
      tenants: config.moa.tenants,
      metrics,
      logger,
      resolver: options.webhookResolver,
    }),
    {
      ...workerOptions,
      settings: {
        backoffStrategy: (attemptsMade: number) => webhookRetryDelayMs(config.moa.webhooks, attemptsMade),
      },
    },
  );
  const requestSchema = jobDataSchemasFor(config.moa).request;
  const labels = metricLabelsFor(config.moa);
  // A request that failed for an unexpected reason (attempts exhausted) still gets its webhook and its count.
  orchestrator.on('failed', (job, error) => {
    if (!job || error.name === 'UnrecoverableError' || job.attemptsMade < (job.opts.attempts ?? 1)) return;
    // Only data that passed the processor's validation is acted on.
    const parsed = requestSchema.safeParse(job.data);
    if (!parsed.success || job.id !== parsed.data.requestId) return;
    const data = parsed.data;
    metrics.jobsFinished.inc({ preset: labels.preset(data.preset.name), outcome: 'failed' });
    metrics.jobDuration.observe(
      { preset: labels.preset(data.preset.name), outcome: 'failed' },
      (Date.now() - data.createdAt) / 1000,
    );
    enqueueWebhook(queues, data).catch((failure: unknown) =>
      logger.error({ requestId: data.requestId, error: String(failure) }, 'cannot queue webhook'),
    );
    const progress =
      job.progress && typeof job.progress === 'object' ? (job.progress as RequestProgress) : undefined;
    recordBatchItemEnd({ queues, redis: commands, logger }, data, {
      status: 'failed',
      progress,
      error: { message: error.message || 'the request failed', type: 'server_error', code: null },
    }).catch((failure: unknown) =>
      logger.error({ requestId: data.requestId, error: String(failure) }, 'cannot record batch item'),
    );
  });
  // Batch housekeeping: finalization, cancel and expiry drains, validation watchdog.
  const batchWorker = new Worker(
    BATCHES_QUEUE,
    createBatchProcessor({ queues, redis: commands, logger }),
    workerOptions,
  );
  const workers = [orchestrator, deadlineWorker, webhookWorker, batchWorker, ...callWorkers];
  for (const worker of workers) {
    worker.on('error', (error) => logger.error({ queue: worker.name, error: error.message }, 'worker error'));
    worker.on('failed', (job, error) => {
      if (!job) return;
      // A job that is not ours (added to Redis by something else) is worth an operator's attention.
      if (error.message.startsWith(INVALID_JOB_DATA)) {
        logger.warn({ queue: worker.name, jobId: job.id, error: error.message }, 'job refused: invalid data');
      } else {
        logger.debug({ queue: worker.name, jobId: job.id, error: error.message }, 'job failed');
      }
    });
  }
  // Per-provider concurrency is enforced across every worker process by BullMQ's global concurrency.
  await Promise.all(
    providers.map((provider) =>
      queues.llm(provider).setGlobalConcurrency(config.moa.providers[provider]?.concurrency ?? 32),
    ),
  );
  const stopListening = await listenForCancels(connection, config.queuePrefix, callWorkers, logger);
  let server: Server | undefined;
  if (options.serveMetrics !== false) {
    server = await startMetricsServer({
      registry: metrics.registry,
      port: config.metricsPort,
      host: config.metricsHost,
      // The BullMQ connection retries forever during an outage; the probe must answer anyway.
      isReady: async () =>
        (await Promise.race([
          commands.ping().catch(() => undefined),
          new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), 2000).unref()),
        ])) === 'PONG',
    });
  }
  await Promise.all(workers.map((worker) => worker.waitUntilReady()));
  logger.info(
    {
      providers,
      concurrency: config.concurrency,
      metricsPort: (server?.address() as AddressInfo | null)?.port,
    },
    'worker started',
  );

  return {
    workers,
    metrics,
    metricsPort: (server?.address() as AddressInfo | null)?.port,
    async close() {
      let timer: NodeJS.Timeout | undefined;
      const graceful = Promise.all(workers.map((worker) => worker.close()));
      const expired = new Promise<'expired'>((resolve) => {
        timer = setTimeout(() => resolve('expired'), config.shutdownGraceMs);
      });
      if ((await Promise.race([graceful, expired])) === 'expired') {
        logger.warn({ graceMs: config.shutdownGraceMs }, 'shutdown grace expired: abandoning in-flight jobs');
        // Their locks lapse and stalled-job detection hands them to another worker.
        await Promise.all(workers.map((worker) => worker.close(true)));
      }
      clearTimeout(timer);
      await stopListening();
      await queues.close();
      await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
      connection.disconnect();
      commands.disconnect();
    },
  };
}
