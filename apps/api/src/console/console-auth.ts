import type { Request, RequestHandler } from 'express';
import { ApiError } from '../api-error.js';
import { CONSOLE_COOKIE, readCookie } from './cookies.js';
import { isConsolePath, OPEN_CONSOLE_PATHS } from './console-paths.js';
import { createKeyCheck } from '../key-check.js';

/** A browser navigating to a page (not a script or API client asking for JSON). */
function isPageLoad(request: Request): boolean {
  return (
    (request.method === 'GET' || request.method === 'HEAD') &&
    (request.get('accept') ?? '').includes('text/html')
  );
}

/**
 * Auth for the console and bull-board (`/console/**`, `/admin/queues/**`),
 * which run before the API's own bearer auth: a browser cannot add an
 * `Authorization` header to a page load, so here the key may also come from
 * the HttpOnly `moa_console_key` cookie that the login form sets. Either is
 * checked with the same constant-time compare as the API's keys. Every other
 * path passes through untouched, so `/v1` auth is the API's alone.
 *
 * Without a key a page load is redirected to the login form; anything else
 * gets the API's 401 error object.
 */
export function consoleAuth(apiKeys: string[]): RequestHandler {
  const check = createKeyCheck(apiKeys);
  return (request, response, next) => {
    if (apiKeys.length === 0 || !isConsolePath(request.path) || OPEN_CONSOLE_PATHS.has(request.path)) {
      return next();
    }
    const bearer = /^Bearer\s+(.+)$/i.exec(request.get('authorization') ?? '')?.[1]?.trim();
    const cookie = readCookie(request.get('cookie'), CONSOLE_COOKIE);
    if ((bearer !== undefined && check(bearer)) || (cookie !== undefined && cookie !== '' && check(cookie))) {
      return next();
    }
    if (isPageLoad(request)) {
      response.redirect(303, `/console/login?next=${encodeURIComponent(request.originalUrl)}`);
      return;
    }
    if (bearer === undefined && !cookie) {
      return next(
        new ApiError(
          401,
          'Missing API key: send Authorization: Bearer <key>, or log in at /console/login',
          'invalid_request_error',
          null,
          'missing_api_key',
        ),
      );
    }
    next(new ApiError(401, 'Incorrect API key provided', 'invalid_request_error', null, 'invalid_api_key'));
  };
}
