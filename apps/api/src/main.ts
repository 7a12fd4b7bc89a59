import { createMoaQueues } from '@moa-queue/contract';
import { Redis } from 'ioredis';
import { createApp } from './app.js';
import { checkListenPolicy, loadApiConfig } from './config.js';
import { createLogger } from './logger.js';

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

const redis = new Redis(config.redisUrl, { maxRetriesPerRequest: 2 });
redis.on('error', (error) => logger.warn({ error: error.message }, 'redis connection error'));
const queues = createMoaQueues({
  connection: redis,
  prefix: config.queuePrefix,
  providers: Object.keys(config.moa.providers),
  onError: (error) => logger.warn({ error: error.message }, 'queue connection error'),
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
});
const server = app.listen(config.port, config.host, () => {
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  logger.info({ host: config.host, port }, `API listening on http://${config.host}:${port}`);
});

// A whole request (a 200 MB batch file upload included) must arrive within 10 minutes.
server.requestTimeout = 600_000;

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
      queues
        .close()
        .then(() => redis.quit())
        .finally(() => process.exit(0));
    });
    server.closeIdleConnections();
  });
}
