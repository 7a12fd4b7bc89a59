import type { RequestHandler } from 'express';
import type { Logger } from 'pino';

/** One structured line per HTTP request, with its request id; never headers or bodies. */
export function accessLog(logger: Logger): RequestHandler {
  return (request, response, next) => {
    const started = performance.now();
    response.on('finish', () => {
      logger.info(
        {
          requestId: response.locals.requestId,
          method: request.method,
          path: request.path,
          status: response.statusCode,
          durationMs: Math.round(performance.now() - started),
        },
        'http request',
      );
    });
    next();
  };
}
