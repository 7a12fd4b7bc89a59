import type { RequestHandler } from 'express';
import type { ApiMetrics } from '../metrics.js';

const KNOWN_METHODS = new Set(['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS']);

/**
 * Counts requests by route template (`/v1/jobs/:id`), never by the raw path,
 * so label values stay bounded whatever clients send.
 */
export function httpMetrics(metrics: ApiMetrics): RequestHandler {
  return (request, response, next) => {
    const started = performance.now();
    response.on('finish', () => {
      const routePath = (request.route as { path?: unknown } | undefined)?.path;
      const labels = {
        method: KNOWN_METHODS.has(request.method) ? request.method : 'OTHER',
        route: typeof routePath === 'string' ? routePath : 'unmatched',
        status: String(response.statusCode),
      };
      metrics.httpRequests.inc(labels);
      metrics.httpDuration.observe(labels, (performance.now() - started) / 1000);
    });
    next();
  };
}
