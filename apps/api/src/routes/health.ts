import { strictRouter } from '../strict-router.js';
import type { Redis } from 'ioredis';
import type { Registry } from 'prom-client';
import { redisFaultError } from '../redis-errors.js';
import { probeRedis } from '../redis-health.js';

/**
 * `GET /healthz` (the process is up), `GET /readyz` (Redis answers and
 * accepts writes) and `GET /metrics`. `/readyz` answers within
 * `readyTimeoutMs` whatever Redis does: 503 `redis_unavailable` when it is
 * unreachable, paused or loading, 503 `redis_full` at `maxmemory`, each with
 * `Retry-After`.
 */
export function healthRouter(redis: Redis, registry: Registry, readyTimeoutMs = 2000) {
  const router = strictRouter();
  router.get('/healthz', (_request, response) => {
    response.json({ status: 'ok' });
  });
  router.get('/readyz', async (_request, response) => {
    const health = await probeRedis(redis, readyTimeoutMs);
    if (!health.ok) throw Object.assign(redisFaultError(health.fault), { cause: new Error(health.reason) });
    response.json({ status: 'ready', redis: 'ok' });
  });
  router.get('/metrics', async (_request, response) => {
    response.type(registry.contentType).send(await registry.metrics());
  });
  return router;
}
