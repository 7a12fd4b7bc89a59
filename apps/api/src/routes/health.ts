import { Router } from 'express';
import type { Redis } from 'ioredis';

/** Resolves with `undefined` after `milliseconds`, so a hung Redis cannot hang a probe. */
function timeout(milliseconds: number): Promise<undefined> {
  return new Promise((resolve) => setTimeout(() => resolve(undefined), milliseconds).unref());
}

/** `GET /healthz` (the process is up) and `GET /readyz` (Redis answers). */
export function healthRouter(redis: Redis): Router {
  const router = Router();
  router.get('/healthz', (_request, response) => {
    response.json({ status: 'ok' });
  });
  router.get('/readyz', async (_request, response) => {
    const answer = await Promise.race([redis.ping().catch(() => undefined), timeout(2000)]);
    if (answer === 'PONG') response.json({ status: 'ready', redis: 'ok' });
    else response.status(503).json({ status: 'unavailable', redis: 'unreachable' });
  });
  return router;
}
