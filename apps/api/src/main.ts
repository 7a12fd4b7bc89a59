import { createFileStore, createMoaQueues, withTimeout } from '@moa-queue/contract';
import { createApp } from './app.js';
import { createApiMetrics } from './metrics.js';
import { checkListenPolicy, loadApiConfig } from './config.js';
import { createApiServer, writeApiError } from './http-server.js';
import { createLogger } from './logger.js';
import { createApiRedis } from './redis-connection.js';
import { redisFaultError } from './redis-errors.js';
import { watchRedisHealth } from './redis-health.js';

const config = (() => {
  try {
    return loadApiConfig();
  } catch (error) {
    console.error(error instanceof Error ? error.message : error);
    process.exit(1);
  }
})();
const logger = createLogger(config.logLevel);
const policy = checkListenPolicy(config);
if (policy.error) {
  logger.fatal(policy.error);
  process.exit(1);
}
if (policy.warning) logger.warn(policy.warning);

// Every command has a timeout and fails at once while disconnected (see apiRedisOptions).
const redis = createApiRedis(config.redisUrl, { commandTimeoutMs: config.redisCommandTimeoutMs });
// Logs an outage once and its end once; the connection's and queues' error events are only counted.
const redisHealth = watchRedisHealth(redis, logger, { timeoutMs: config.redisCommandTimeoutMs });
const queues = createMoaQueues({
  connection: redis,
  prefix: config.queuePrefix,
  providers: Object.keys(config.moa.providers),
  onError: (error) => redisHealth.noteError(error),
});
/**
 * BullMQ queues wait for their connection's first `ready` before any
 * command (afterwards they fail fast with it). The API listens at once, so
 * that its probes answer even when Redis is down as it starts; a request
 * that arrives before the queues are ready (the first milliseconds of a
 * normal start, or all along while Redis is down) waits for them up to one
 * command timeout, then gets 503, rather than a 503 in a normal start.
 */
const queuesReady = Promise.all(queues.all().map((queue) => queue.waitUntilReady()));
let ready = false;
queuesReady.then(
  () => {
    ready = true;
  },
  (error: unknown) => logger.error({ error: String(error) }, 'queues failed to start'),
);
/** Served before the queues are ready: each answers within its own bound while Redis is down. */
const ALWAYS_SERVED = new Set(['/healthz', '/readyz', '/metrics']);
// Batch files: in MOA_FILES_DIR when set (every worker must be given the same), else in Redis.
const files = createFileStore({ redis, prefix: config.queuePrefix, directory: config.filesDir });
await files.check().catch((error: unknown) => {
  logger.fatal({ error: error instanceof Error ? error.message : String(error) }, 'API failed to start');
  process.exit(1);
});
const app = createApp({
  queues,
  redis,
  config: config.moa,
  logger,
  apiKeys: config.apiKeys,
  adminKeys: config.adminKeys,
  trustProxy: config.trustProxy,
  maxBodyBytes: config.maxBodyBytes,
  webhookSecret: config.webhookSecret,
  rateLimitRpm: config.rateLimitRpm,
  failureReplaySeconds: config.failureReplaySeconds,
  files,
  metrics: createApiMetrics(queues, { health: redisHealth }),
});
const server = createApiServer(
  (request, response) => {
    if (ready || ALWAYS_SERVED.has(request.url ?? '')) {
      app(request, response);
      return;
    }
    withTimeout(queuesReady, config.redisCommandTimeoutMs).then(
      () => app(request, response),
      () => {
        request.resume();
        writeApiError(response, redisFaultError('unavailable'));
      },
    );
  },
  {
    headersTimeoutMs: config.headersTimeoutMs,
    bodyTimeoutMs: config.bodyTimeoutMs,
    uploadTimeoutMs: config.uploadTimeoutMs,
    maxConnections: config.maxConnections,
    logger,
  },
);
server.listen(config.port, config.host, () => {
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  logger.info(
    { host: config.host, port, fileStore: files.kind },
    `API listening on http://${config.host}:${port}`,
  );
});

/**
 * On SIGTERM the API stops accepting connections and gives requests in
 * flight (chat completions waiting on their job, SSE streams) this long,
 * then closes what is left: the jobs go on, and clients can poll or resume.
 * Shorter than compose's 30 s and Kubernetes' 60 s grace periods.
 */
const DRAIN_MS = 20_000;

let stopping = false;
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.on(signal, () => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal, drainMs: DRAIN_MS }, 'stopping: draining requests in flight');
    const drain = setTimeout(() => server.closeAllConnections(), DRAIN_MS);
    drain.unref();
    server.close(() => {
      clearTimeout(drain);
      redisHealth.stop();
      queues
        .close()
        .then(() => redis.quit())
        .finally(() => process.exit(0));
    });
    server.closeIdleConnections();
  });
}
