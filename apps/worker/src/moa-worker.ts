import type { Server } from 'node:http';
import { hostname } from 'node:os';
import type { AddressInfo } from 'node:net';
import {
  BATCHES_QUEUE,
  coalesceWrites,
  createConnectionStateLogger,
  createFileStore,
  createMoaQueues,
  DEADLINES_QUEUE,
  DEFAULT_BATCH_ITEM_GRACE_MS,
  isInfrastructureError,
  jobDataSchemasFor,
  llmQueueName,
  REQUESTS_QUEUE,
  WEBHOOKS_QUEUE,
  type RequestJobData,
  type RequestResult,
  QUEUE_EVENTS_MAX_LENGTH,
} from '@moa-queue/contract';
import { createModelRegistry, ProviderError, retryDelayMs, type ModelRegistry } from '@moa-queue/moa';
import { Queue, Worker, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { requestEndOf } from './batches/batch-item-hook.js';
import { createBatchProcessor } from './batches/batch-processor.js';
import { createBatchItemSweeper } from './batches/batch-item-sweeper.js';
import { createBatchReconciler, RECONCILE_QUEUE } from './batches/batch-reconciler.js';
import { createFileSweep } from './batches/file-sweep.js';
import { createCallProcessor } from './call-processor.js';
import { listenForCancels } from './cancel-listener.js';
import { createDeadlineProcessor } from './deadline-processor.js';
import type { WorkerConfig } from './config.js';
import { metricLabelsFor } from './metric-labels.js';
import { startMetricsServer } from './metrics-server.js';
import { createWorkerMetrics, type WorkerMetrics } from './metrics.js';
import { INFRA_RETRY_POLICY, isLostJobError, withInfraRetry, type Processor } from './infra-retry.js';
import { createOrchestratorProcessor } from './orchestrator-processor.js';
import { endRequest } from './request-end.js';
import { INVALID_JOB_DATA } from './parse-job-data.js';
import { createStallForgiveness } from './stall-forgiveness.js';
import type { Resolver } from './webhooks/deliver-webhook.js';
import { createWebhookProcessor, webhookRetryDelayMs } from './webhooks/webhook-processor.js';
import { warnAboutPresetModels, type PresetModelsWarningOptions } from './preset-models-warning.js';

/**
 * How often finished batch items whose grace has passed are removed (at most;
 * the reconciler's interval when that is shorter).
 */
const ITEM_SWEEP_INTERVAL_MS = 10_000;
/** How often the worker checks, while Redis serves it, that it still does (2 s bound each time). */
const REDIS_WATCH_INTERVAL_MS = 5000;

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
  /**
   * The start-up check that every preset model is served by its provider
   * (preset-models-warning.ts): its options, or false to skip it.
   * @defaultValue {} (on, keys from process.env, 5 s per provider)
   */
  presetModelsCheck?: Omit<PresetModelsWarningOptions, 'signal'> | false;
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
  // BullMQ's commands (a script per job move) go out in one write per turn of the event loop:
  // one system call per command was the worker's largest single cost (coalesced-writes.ts).
  coalesceWrites(connection);
  // Our own commands go on a connection without BullMQ's scripts: ioredis builds
  // pipelines much faster there, and auto-pipelining batches concurrent commands.
  const commands = new Redis(config.redisUrl, { maxRetriesPerRequest: null, enableAutoPipelining: true });
  // Whether Redis serves this process: an outage is one warning and its end one info line,
  // however many commands, polls and lock renewals fail meanwhile. A write proves the end
  // (a full Redis still answers reads). The same write, bounded, every 5 s while all is well
  // notices a paused Redis, which fails none of the worker's commands (they have no timeout:
  // a long call must not lose its job to a slow reply) but lets their locks lapse.
  const probeKey = `${config.queuePrefix}:moa-worker-probe:${hostname()}:${process.pid}`;
  const health = createConnectionStateLogger(logger, 'worker', {
    probe: () => commands.set(probeKey, '1', 'PX', 10_000),
    watchIntervalMs: REDIS_WATCH_INTERVAL_MS,
  });
  const forgiveness = createStallForgiveness({
    redis: commands,
    prefix: config.queuePrefix,
    health,
    logger,
    lockDurationMs: config.lockDurationMs,
  });
  /** Tells `health` about an error (stall forgiveness reads its outages there); true when it was Redis trouble. */
  const reportRedisError = (error: unknown): boolean => health.onError(error);
  /** Every 'error' listener of the process: Redis trouble goes to `health`, anything else is logged. */
  const onRedisError =
    (message: string, fields: Record<string, string> = {}, level: 'warn' | 'error' = 'warn') =>
    (error: Error): void => {
      if (reportRedisError(error)) return;
      // A lost lock is reported per job at every renewal; stall-forgiveness.ts logs it once.
      if (isLostJobError(error) || error.message.startsWith('could not renew lock for job')) {
        logger.debug({ ...fields, error: error.message }, 'job lock lost');
        return;
      }
      logger[level]({ ...fields, error: error.message }, message);
    };
  connection.on('error', onRedisError('redis connection error'));
  commands.on('error', onRedisError('redis connection error'));
  const providers = Object.keys(config.moa.providers);
  const queues = createMoaQueues({
    connection,
    prefix: config.queuePrefix,
    providers,
    onError: onRedisError('queue connection error'),
  });
  const infraRetry = {
    redis: commands,
    prefix: config.queuePrefix,
    health: { onError: reportRedisError },
    logger,
    lockDurationMs: config.lockDurationMs,
    onLockLost: (job: Job) => forgiveness.lockLost(job.queueName, [job.id ?? '']),
  };
  /** A processor whose Redis errors cost no attempt (infra-retry.ts). */
  const retrying = <Data, Result>(queueName: string, processor: Processor<Data, Result>) =>
    withInfraRetry(queueName, processor, infraRetry);
  // Batch files: in MOA_FILES_DIR when set (the API must be given the same), else in Redis.
  const files = createFileStore({ redis: commands, prefix: config.queuePrefix, directory: config.filesDir });
  await files.check();
  const metrics = createWorkerMetrics({ health });
  const batchItemGraceMs = config.batchItemGraceMs ?? DEFAULT_BATCH_ITEM_GRACE_MS;
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
    retrying(
      REQUESTS_QUEUE,
      createOrchestratorProcessor({
        queues,
        redis: commands,
        files,
        config: config.moa,
        metrics,
        logger,
        batchItemGraceMs,
      }),
    ),
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
    return new Worker(llmQueueName(provider), retrying(llmQueueName(provider), callProcessor), {
      ...workerOptions,
      concurrency: Math.min(config.concurrency, providerConfig?.concurrency ?? config.concurrency),
      // Always a limiter: BullMQ honours a manual pause (queue.rateLimit after a 429)
      // only on queues whose workers have one. Without requestsPerMinute it never binds.
      limiter: providerConfig?.requestsPerMinute
        ? { max: providerConfig.requestsPerMinute, duration: 60_000 }
        : { max: 1_000_000_000, duration: 1000 },
      settings: {
        // The retry rule's delay (retry-rule.ts): a provider's Retry-After, else exponential backoff.
        backoffStrategy: (attemptsMade: number, _type?: string, error?: Error) =>
          retryDelayMs(error instanceof ProviderError ? error : { retryAfterMs: undefined }, attemptsMade),
      },
    });
  });
  const deadlineWorker = new Worker(
    DEADLINES_QUEUE,
    retrying(
      DEADLINES_QUEUE,
      createDeadlineProcessor({ queues, redis: commands, config: config.moa, logger }),
    ),
    workerOptions,
  );
  const webhookWorker = new Worker(
    WEBHOOKS_QUEUE,
    retrying(
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
    ),
    {
      ...workerOptions,
      settings: {
        backoffStrategy: (attemptsMade: number) => webhookRetryDelayMs(config.moa.webhooks, attemptsMade),
      },
    },
  );
  const requestSchema = jobDataSchemasFor(config.moa).request;
  const endDependencies = {
    queues,
    redis: commands,
    metrics,
    labels: metricLabelsFor(config.moa),
    logger,
    files,
    batchItemGraceMs,
  };
  /**
   * A request that BullMQ failed without our processor writing its end: failed without running
   * (stalled more often than allowed), or a Redis error past the retry horizon on the last
   * attempt. It ends through the same endRequest as every other request, retried here until its
   * writes land; the batch reconciler covers a batch
   * item should this process die first. Every other failure was written by the run that threw it.
   */
  orchestrator.on('failed', (job, error) => {
    if (!job) return;
    const final = error.name === 'UnrecoverableError' || job.attemptsMade >= (job.opts.attempts ?? 1);
    if (!final || !(job.deferredFailure || isInfrastructureError(error))) return;
    // Only data that passed the processor's validation is acted on.
    const parsed = requestSchema.safeParse(job.data);
    if (!parsed.success || job.id !== parsed.data.requestId) return;
    endFailedRequest(job as Job<RequestJobData, RequestResult>, parsed.data).catch((failure: unknown) =>
      logger.error(
        { requestId: parsed.data.requestId, error: String(failure) },
        'cannot end a failed request',
      ),
    );
  });
  async function endFailedRequest(
    job: Job<RequestJobData, RequestResult>,
    data: RequestJobData,
  ): Promise<void> {
    const end = requestEndOf(job, 'failed');
    if (!end) return;
    const startedAt = Date.now();
    for (let attempt = 0; ; attempt += 1) {
      try {
        await endRequest(endDependencies, data, end);
        return;
      } catch (failure) {
        if (!reportRedisError(failure) || Date.now() - startedAt > INFRA_RETRY_POLICY.horizonMs)
          throw failure;
        await health.whenHealthy();
        await new Promise((resolve) => setTimeout(resolve, Math.min(30_000, 500 * 2 ** attempt)));
      }
    }
  }
  // Batch jobs: validation of input files, finalization, cancel and expiry drains.
  const batchWorker = new Worker(
    BATCHES_QUEUE,
    retrying(
      BATCHES_QUEUE,
      createBatchProcessor({ queues, redis: commands, files, logger, config: config.moa, batchItemGraceMs }),
    ),
    workerOptions,
  );
  // The batch reconciler: one pass per interval across all workers, on a queue of its own. Every
  // process offers the pass of the current interval under the same id (so it runs once); no
  // repeatable job, whose next run BullMQ could fail to schedule while Redis refuses writes.
  const reconcileQueue = new Queue(RECONCILE_QUEUE, {
    connection,
    prefix: config.queuePrefix,
    streams: { events: { maxLen: QUEUE_EVENTS_MAX_LENGTH } },
    defaultJobOptions: { removeOnComplete: { age: 3600 }, removeOnFail: { age: 3600 } },
  });
  reconcileQueue.on('error', onRedisError('queue connection error'));
  const reconcile = createBatchReconciler({ queues, redis: commands, files, logger, batchItemGraceMs });
  const sweep = createBatchItemSweeper({ queues, redis: commands, logger, batchItemGraceMs });
  const sweepFiles = createFileSweep({ redis: commands, prefix: config.queuePrefix, files, logger });
  const reconcileWorker = new Worker(
    RECONCILE_QUEUE,
    async (job) => {
      // The next pass comes soon enough: a failed pass is logged, never retried.
      // Batch items whose grace has passed (their requests, calls and keys go): every pass.
      try {
        await sweep();
      } catch (error) {
        if (!reportRedisError(error)) logger.error({ error: String(error) }, 'batch item sweep failed');
      }
      if (job.name !== 'reconcile') return;
      try {
        await reconcile();
      } catch (error) {
        if (!reportRedisError(error)) logger.error({ error: String(error) }, 'batch reconciliation failed');
      }
      // At most hourly across the cluster: files whose metadata Redis has expired, and other leftovers.
      try {
        await sweepFiles();
      } catch (error) {
        if (!reportRedisError(error)) logger.error({ error: String(error) }, 'file store sweep failed');
      }
    },
    { ...workerOptions, concurrency: 1 },
  );
  const reconcileIntervalMs = config.reconcileIntervalMs ?? 60_000;
  const offerReconcile = () => {
    const slot = Math.floor(Date.now() / reconcileIntervalMs);
    reconcileQueue.add('reconcile', {}, { jobId: `reconcile-${slot}` }).catch((error: unknown) => {
      if (!reportRedisError(error))
        logger.warn({ error: String(error) }, 'cannot queue batch reconciliation');
    });
  };
  const reconcileTimer = setInterval(offerReconcile, reconcileIntervalMs);
  reconcileTimer.unref();
  // Items are swept more often than batches are reconciled: a finished item is a copy of its line
  // (about 16 KB with 400-word answers), and a fast batch finishes thousands a minute.
  const sweepIntervalMs = Math.min(reconcileIntervalMs, ITEM_SWEEP_INTERVAL_MS);
  const offerSweep = () => {
    const slot = Math.floor(Date.now() / sweepIntervalMs);
    reconcileQueue.add('sweep', {}, { jobId: `sweep-${slot}` }).catch((error: unknown) => {
      if (!reportRedisError(error)) logger.warn({ error: String(error) }, 'cannot queue batch item sweep');
    });
  };
  const sweepTimer = setInterval(offerSweep, sweepIntervalMs);
  sweepTimer.unref();
  const workers = [orchestrator, deadlineWorker, webhookWorker, batchWorker, reconcileWorker, ...callWorkers];
  for (const worker of workers) {
    worker.on('error', onRedisError('worker error', { queue: worker.name }, 'error'));
    forgiveness.watch(worker);
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
  const stopListening = await listenForCancels(
    connection,
    config.queuePrefix,
    callWorkers,
    logger,
    onRedisError('cancel subscriber error'),
  );
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
      fileStore: files.kind,
    },
    'worker started',
  );
  // Never awaited: a slow or unreachable provider only costs a warning, not a later start.
  const modelsCheck = new AbortController();
  if (options.presetModelsCheck !== false) {
    void warnAboutPresetModels(config.moa, logger, {
      ...options.presetModelsCheck,
      signal: modelsCheck.signal,
    });
  }

  return {
    workers,
    metrics,
    metricsPort: (server?.address() as AddressInfo | null)?.port,
    async close() {
      modelsCheck.abort();
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
      clearInterval(reconcileTimer);
      clearInterval(sweepTimer);
      await stopListening();
      await reconcileQueue.close();
      await queues.close();
      health.close();
      await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
      connection.disconnect();
      commands.disconnect();
    },
  };
}
