import { createServer, type Server } from 'node:http';
import type { Registry } from 'prom-client';

/** Options of {@link startMetricsServer}. */
export interface MetricsServerOptions {
  registry: Registry;
  port: number;
  host: string;
  /** Whether the worker is ready to take jobs (Redis reachable). */
  isReady: () => Promise<boolean>;
}

/**
 * Serves `GET /metrics` (Prometheus text), `GET /healthz` and `GET /readyz`
 * for the worker; a tiny node:http server, as there is nothing else to route.
 */
export async function startMetricsServer(options: MetricsServerOptions): Promise<Server> {
  const server = createServer((request, response) => {
    const path = (request.url ?? '/').split('?')[0];
    const send = (status: number, body: string, type = 'application/json') => {
      response.writeHead(status, { 'content-type': type });
      response.end(body);
    };
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      send(405, JSON.stringify({ error: { message: 'method not allowed', type: 'invalid_request_error' } }));
      return;
    }
    if (path === '/metrics') {
      options.registry
        .metrics()
        .then((text) => send(200, text, options.registry.contentType))
        .catch((error: unknown) => send(500, JSON.stringify({ error: { message: String(error) } })));
    } else if (path === '/healthz') {
      send(200, JSON.stringify({ status: 'ok' }));
    } else if (path === '/readyz') {
      options
        .isReady()
        .then((ready) => send(ready ? 200 : 503, JSON.stringify({ status: ready ? 'ready' : 'unavailable' })))
        .catch(() => send(503, JSON.stringify({ status: 'unavailable' })));
    } else {
      send(404, JSON.stringify({ error: { message: `no route ${path}`, type: 'invalid_request_error' } }));
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => resolve());
  });
  return server;
}
