import type { MoaQueues } from '@moa-queue/contract';
import type { MoaConfig } from '@moa-queue/moa';
import express, { type Express } from 'express';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { batchesRouter } from './batches/batches-router.js';
import { DEFAULT_BATCH_OPTIONS, type BatchApiOptions } from './batches/batch-options.js';
import { filesRouter } from './batches/files-router.js';
import { consoleRouter } from './console/console-router.js';
import { accessLog } from './middleware/access-log.js';
import { auth } from './middleware/auth.js';
import { errorHandler, notFound } from './middleware/error-handler.js';
import { httpMetrics } from './middleware/http-metrics.js';
import { createApiMetrics, type ApiMetrics } from './metrics.js';
import { jsonBody } from './middleware/json-body.js';
import { rateLimit } from './middleware/rate-limit.js';
import { requestId } from './middleware/request-id.js';
import { createRequestStore } from './request-store.js';
import { chatCompletionsRouter } from './routes/chat-completions.js';
import { healthRouter } from './routes/health.js';
import { jobsRouter } from './routes/jobs.js';
import { modelsRouter } from './routes/models.js';

/** Everything the API needs; `createApp` builds no connection of its own. */
export interface AppDependencies {
  queues: MoaQueues;
  redis: Redis;
  config: MoaConfig;
  logger: Logger;
  /** Bearer keys; empty means no auth (the listener then stays on loopback). */
  apiKeys?: string[];
  /** @defaultValue 4194304 */
  maxBodyBytes?: number;
  webhookSecret?: string;
  /** Created from the queues when not given. */
  metrics?: ApiMetrics;
  /** Requests per minute per API key; 0 turns the limit off. @defaultValue 0 */
  rateLimitRpm?: number;
  /** How long a chat completion waits for its request. @defaultValue 600000 */
  chatTimeoutMs?: number;
  /** Limits of the Files and Batch API (file size, lines, completion window). */
  batches?: Partial<BatchApiOptions>;
}

/** Builds the Express app. It never listens: `main.ts` does, tests call it in process. */
export function createApp(dependencies: AppDependencies): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.set('query parser', 'simple');
  const store = createRequestStore(dependencies.queues, dependencies.redis);

  const metrics = dependencies.metrics ?? createApiMetrics(dependencies.queues);

  app.use(requestId());
  app.use(accessLog(dependencies.logger));
  app.use(httpMetrics(metrics));
  app.use(healthRouter(dependencies.redis, metrics.registry));
  // The job console and bull-board enforce the same keys themselves (bearer or login cookie).
  app.use(
    consoleRouter({ queues: dependencies.queues, redis: dependencies.redis, apiKeys: dependencies.apiKeys }),
  );
  app.use(auth(dependencies.apiKeys ?? []));
  app.use(rateLimit(dependencies.redis, dependencies.queues.prefix, dependencies.rateLimitRpm ?? 0));
  const batchDependencies = {
    queues: dependencies.queues,
    redis: dependencies.redis,
    config: dependencies.config,
    options: { ...DEFAULT_BATCH_OPTIONS, ...dependencies.batches },
    maxLineBytes: dependencies.maxBodyBytes ?? 4 * 1024 * 1024,
  };
  // File uploads are multipart and streamed: mounted before the JSON body parser.
  app.use(filesRouter(batchDependencies));
  app.use(jsonBody(dependencies.maxBodyBytes ?? 4 * 1024 * 1024));
  app.use(batchesRouter(batchDependencies));
  app.use(modelsRouter(dependencies.config, Date.now()));
  const shared = {
    store,
    config: dependencies.config,
    queues: dependencies.queues,
    redis: dependencies.redis,
  };
  app.use(jobsRouter({ ...shared, webhookSecretConfigured: Boolean(dependencies.webhookSecret) }));
  app.use(chatCompletionsRouter({ ...shared, timeoutMs: dependencies.chatTimeoutMs ?? 600_000 }));
  app.use(notFound());
  app.use(errorHandler(dependencies.logger));
  return app;
}
