import { strictRouter } from '../strict-router.js';
import type { Redis } from 'ioredis';
import type { Registry } from 'prom-client';

/** Resolves with `undefined` after `milliseconds`, so a hung Redis cannot hang a probe. */
function timeout(milliseconds: number): Promise<undefined> {
  return new Promise((resolve) => setTimeout(() => resolve(undefined), milliseconds).unref());
}

/** `GET /healthz` (the process is up), `GET /readyz` (Redis answers) and `GET /metrics`. */
export function healthRouter(redis: Redis, registry: Registry) {
  const router = strictRouter();
  router.get('/healthz', (_request, response) => {
    response.json({ status: 'ok' });
  });
  router.get('/readyz', async (_request, response) => {
    const answer = await Promise.race([redis.ping().catch(() => undefined), timeout(2000)]);
    if (answer === 'PONG') response.json({ status: 'ready', redis: 'ok' });
    else response.status(503).json({ status: 'unavailable', redis: 'unreachable' });
  });
  router.get('/metrics', async (_request, response) => {
    response.type(registry.contentType).send(await registry.metrics());
  });
  return router;
}
