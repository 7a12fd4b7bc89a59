import { RedisFileStore, type FileStore, type MoaQueues } from '@moa-queue/contract';
import type { MoaConfig } from '@moa-queue/moa';
import express, { type Express } from 'express';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { batchesRouter } from './batches/batches-router.js';
import { DEFAULT_BATCH_OPTIONS, type BatchApiOptions } from './batches/batch-options.js';
import { filesRouter } from './batches/files-router.js';
import { consoleRouter } from './console/console-router.js';
import { accessLog } from './middleware/access-log.js';
import { errorHandler, notFound } from './middleware/error-handler.js';
import { httpMetrics } from './middleware/http-metrics.js';
import { createApiMetrics, type ApiMetrics } from './metrics.js';
import { jsonBody } from './middleware/json-body.js';
import { accessGate } from './middleware/access-gate.js';
import { assertDistinctKeys, parseApiKeys } from './api-keys.js';
import { createAuthThrottle } from './auth-throttle.js';
import { createSessionStore } from './console/sessions.js';
import { createKeyring } from './keyring.js';
import { rateLimit } from './middleware/rate-limit.js';
import { requestId } from './middleware/request-id.js';
import { createFailureReplay } from './failure-replay.js';
import { createRequestStore } from './request-store.js';
import { chatCompletionsRouter } from './routes/chat-completions.js';
import { healthRouter } from './routes/health.js';
import { jobsRouter } from './routes/jobs.js';
import { modelsRouter } from './routes/models.js';
import { responsesRouter } from './routes/responses.js';

/** Everything the API needs; `createApp` builds no connection of its own. */
export interface AppDependencies {
  queues: MoaQueues;
  redis: Redis;
  config: MoaConfig;
  logger: Logger;
  /**
   * Bearer keys, each `key` or `name:key` (the name is the tenant; see
   * `parseApiKeys`). None means no auth: one tenant, `default`, and the
   * listener stays on loopback.
   */
  apiKeys?: string[];
  /** Admin keys, same syntax: they see every tenant's objects and alone reach bull-board. */
  adminKeys?: string[];
  /**
   * Express `trust proxy`: how the client address (for the auth throttle)
   * and HTTPS (for the session cookie's `Secure`) are taken from a proxy.
   * @defaultValue false
   */
  trustProxy?: boolean | number | string;
  /** @defaultValue 4194304 */
  maxBodyBytes?: number;
  webhookSecret?: string;
  /** Created from the queues when not given. */
  metrics?: ApiMetrics;
  /** Requests per minute per API key; 0 turns the limit off. @defaultValue 0 */
  rateLimitRpm?: number;
  /** How long a chat completion waits for its request. @defaultValue 600000 */
  chatTimeoutMs?: number;
  /**
   * How long a deterministic failure of a chat completion or response is
   * answered again, without a run, to a retry of the same body; 0 turns it off.
   * @defaultValue 300
   */
  failureReplaySeconds?: number;
  /** Limits of the Files and Batch API (file size, lines, completion window). */
  batches?: Partial<BatchApiOptions>;
  /**
   * Where files' content goes (`createFileStore` from `MOA_FILES_DIR`).
   * @defaultValue a `RedisFileStore` on `redis`
   */
  files?: FileStore;
}

/** Builds the Express app. It never listens: `main.ts` does, tests call it in process. */
export function createApp(dependencies: AppDependencies): Express {
  const keys = [
    ...parseApiKeys(dependencies.apiKeys ?? [], { variable: 'MOA_API_KEYS', admin: false }),
    ...parseApiKeys(dependencies.adminKeys ?? [], { variable: 'MOA_ADMIN_KEYS', admin: true }),
  ];
  assertDistinctKeys(keys);
  const keyring = createKeyring(keys);
  const sessions = createSessionStore(dependencies.redis, dependencies.queues.prefix);
  const throttle = createAuthThrottle(dependencies.redis, dependencies.queues.prefix);

  const app = express();
  // Set before the first route: the app's router takes them when it is made.
  app.set('case sensitive routing', true);
  app.set('strict routing', true);
  app.set('trust proxy', dependencies.trustProxy ?? false);
  app.disable('x-powered-by');
  app.set('etag', false);
  app.set('query parser', 'simple');
  const store = createRequestStore(dependencies.queues, dependencies.redis, dependencies.config);

  const metrics = dependencies.metrics ?? createApiMetrics(dependencies.queues);

  app.use(requestId());
  app.use(accessLog(dependencies.logger));
  app.use(httpMetrics(metrics));
  // The one gate: it decides access for every path before any router runs.
  app.use(accessGate({ keyring, sessions, throttle }));
  app.use(healthRouter(dependencies.redis, metrics.registry));
  app.use(
    consoleRouter({ queues: dependencies.queues, redis: dependencies.redis, keyring, sessions, throttle }),
  );
  app.use(rateLimit(dependencies.redis, dependencies.queues.prefix, dependencies.rateLimitRpm ?? 0));
  const batchDependencies = {
    queues: dependencies.queues,
    redis: dependencies.redis,
    files:
      dependencies.files ??
      new RedisFileStore({ redis: dependencies.redis, prefix: dependencies.queues.prefix }),
    config: dependencies.config,
    options: { ...DEFAULT_BATCH_OPTIONS, ...dependencies.batches },
    maxLineBytes: dependencies.maxBodyBytes ?? 4 * 1024 * 1024,
  };
  // File uploads are multipart and streamed: mounted before the JSON body parser.
  app.use(filesRouter(batchDependencies));
  app.use(jsonBody(dependencies.maxBodyBytes ?? 4 * 1024 * 1024));
  app.use(batchesRouter(batchDependencies));
  app.use(modelsRouter(dependencies.config));
  const shared = {
    store,
    config: dependencies.config,
    queues: dependencies.queues,
    redis: dependencies.redis,
  };
  app.use(jobsRouter({ ...shared, webhookSecret: dependencies.webhookSecret }));
  const waiting = {
    ...shared,
    timeoutMs: dependencies.chatTimeoutMs ?? 600_000,
    failureReplay: createFailureReplay({
      redis: dependencies.redis,
      prefix: dependencies.queues.prefix,
      ttlSeconds: dependencies.failureReplaySeconds ?? 300,
    }),
  };
  app.use(chatCompletionsRouter(waiting));
  app.use(responsesRouter(waiting));
  app.use(notFound());
  app.use(errorHandler(dependencies.logger));
  return app;
}
