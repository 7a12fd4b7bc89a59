import type { MoaQueues } from '@moa-queue/contract';
import express, { Router, type RequestHandler } from 'express';
import type { Redis } from 'ioredis';
import { ApiError } from '../api-error.js';
import { BULL_BOARD_PATH, bullBoardApp } from './bull-board.js';
import { consoleApi } from './console-api.js';
import { consoleAuth } from './console-auth.js';
import { loginRoutes } from './login-routes.js';
import { rateLimit } from '../middleware/rate-limit.js';
import { CONSOLE_PUBLIC_DIR } from './public-dir.js';
import { securityHeaders } from './security-headers.js';

/** What the console needs: the shared queues and Redis, and the API's keys. */
export interface ConsoleDependencies {
  queues: MoaQueues;
  redis: Redis;
  /** The API's bearer keys; empty means no auth, as for the API. */
  apiKeys?: string[];
}

/** The console's pages get its security headers. */
function withSecurityHeaders(): RequestHandler {
  return (_request, response, next) => {
    response.set(securityHeaders());
    next();
  };
}

/** Any other path under /console: a 404 error object (rather than the API's 401 for a cookie user). */
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

/** Login attempts allowed per minute per client address. */
export const LOGIN_ATTEMPTS_PER_MINUTE = 10;

/**
 * The job console and bull-board. Mount it before the API's `auth(...)`:
 * it enforces auth itself for `/console/**` and `/admin/queues/**` (bearer
 * key or the login cookie, see `consoleAuth`) and lets every other request
 * through untouched.
 *
 * - `GET /console`: the page (static HTML, one script, one stylesheet)
 * - `GET|POST /console/login`, `POST /console/logout`
 * - `GET /console/api/jobs`, `GET /console/api/jobs/{id}`, `GET /console/api/session`
 * - `/admin/queues`: bull-board over every queue
 */
export function consoleRouter(dependencies: ConsoleDependencies): Router {
  const apiKeys = dependencies.apiKeys ?? [];
  const router = Router();
  router.use(consoleAuth(apiKeys));
  // Key guessing through the login form is throttled per address, shared by all replicas.
  router.post(
    '/console/login',
    rateLimit(dependencies.redis, dependencies.queues.prefix, LOGIN_ATTEMPTS_PER_MINUTE, 'console-login'),
  );
  router.use(loginRoutes(apiKeys));
  router.use('/console', withSecurityHeaders());
  router.get('/console', (_request, response) => {
    response.sendFile('index.html', { root: CONSOLE_PUBLIC_DIR, headers: { 'cache-control': 'no-cache' } });
  });
  router.use(
    consoleApi({ queues: dependencies.queues, redis: dependencies.redis, authRequired: apiKeys.length > 0 }),
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
