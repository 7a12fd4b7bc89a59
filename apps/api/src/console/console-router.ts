import type { MoaQueues } from '@moa-queue/contract';
import express, { type RequestHandler } from 'express';
import type { Redis } from 'ioredis';
import { ApiError } from '../api-error.js';
import { strictRouter } from '../strict-router.js';
import { bullBoardApp } from './bull-board.js';
import { consoleApi } from './console-api.js';
import { BULL_BOARD_PATH } from './console-paths.js';
import { loginRoutes, type LoginRouteDependencies } from './login-routes.js';
import { CONSOLE_PUBLIC_DIR } from './public-dir.js';
import { securityHeaders } from './security-headers.js';

/** What the console needs: the shared queues and Redis, and the gate's keyring, sessions and throttle. */
export interface ConsoleDependencies extends LoginRouteDependencies {
  queues: MoaQueues;
  redis: Redis;
}
/** The console's pages get its security headers. */
function withSecurityHeaders(): RequestHandler {
  return (_request, response, next) => {
    response.set(securityHeaders());
    next();
  };
}

/** Any other path under /console: a 404 error object, as for any unknown route. */
function consoleNotFound(): RequestHandler {
  return (request, _response, next) => {
    next(
      new ApiError(
        404,
        `Unknown route: ${request.method} ${request.baseUrl}${request.path}`,
        'invalid_request_error',
        null,
        'not_found',
      ),
    );
  };
}

/**
 * The job console and bull-board, mounted behind the access gate (which
 * decides who may reach them: a key or a console session; bull-board is
 * for admin keys only).
 *
 * - `GET /console`: the page (static HTML, one script, one stylesheet)
 * - `GET|POST /console/login`, `POST /console/logout`
 * - `GET /console/api/jobs`, `GET /console/api/jobs/{id}`, `GET /console/api/session`
 * - `/admin/queues`: bull-board over every queue (admins only)
 */
export function consoleRouter(dependencies: ConsoleDependencies) {
  const router = strictRouter();
  router.use(loginRoutes(dependencies));
  router.use('/console', withSecurityHeaders());
  router.get('/console', (_request, response) => {
    response.sendFile('index.html', { root: CONSOLE_PUBLIC_DIR, headers: { 'cache-control': 'no-cache' } });
  });
  router.use(
    consoleApi({
      queues: dependencies.queues,
      redis: dependencies.redis,
      authRequired: dependencies.keyring.size > 0,
    }),
  );
  router.use(
    '/console',
    express.static(CONSOLE_PUBLIC_DIR, {
      index: false,
      redirect: false,
      dotfiles: 'ignore',
      setHeaders: (response) => response.setHeader('cache-control', 'no-cache'),
    }),
  );
  router.use('/console', consoleNotFound());
  router.use(BULL_BOARD_PATH, bullBoardApp(dependencies.queues));
  return router;
}
