import type { Request, RequestHandler, Response } from 'express';
import { ApiError } from '../api-error.js';
import type { AuthThrottle } from '../auth-throttle.js';
import { CONSOLE_COOKIE, readCookie } from '../console/cookies.js';
import { isAdminPath, isConsolePath, OPEN_CONSOLE_PATHS } from '../console/console-paths.js';
import { securityHeaders } from '../console/security-headers.js';
import type { SessionStore } from '../console/sessions.js';
import type { Keyring } from '../keyring.js';
import { OPEN_PRINCIPAL, setPrincipal, type Principal } from '../principal.js';
import { requestSite, SAFE_METHODS } from './same-origin.js';

/** Paths that never need a key: probes and metrics (no user data), the console's login form and stylesheet. */
export const PUBLIC_PATHS: ReadonlySet<string> = new Set([
  '/healthz',
  '/readyz',
  '/metrics',
  ...OPEN_CONSOLE_PATHS,
]);

/** What the gate checks credentials against. */
export interface AccessGateOptions {
  keyring: Keyring;
  sessions: SessionStore;
  throttle: AuthThrottle;
}

/** The bearer key of an `Authorization` header, if it has one. */
export function bearerKey(request: Request): string | undefined {
  const match = /^Bearer\s+(.+)$/i.exec(request.get('authorization') ?? '');
  return match?.[1]?.trim();
}

/** The client address the throttle counts: Express's `request.ip`, which honours `trust proxy`. */
export function clientAddress(request: Request): string {
  return request.ip ?? request.socket.remoteAddress ?? 'unknown';
}

/** A 429 for an address with too many failed authentications. */
export function tooManyFailures(retryAfterSeconds: number): ApiError {
  return new ApiError(
    429,
    `Too many failed authentications from this address; retry in ${retryAfterSeconds} s`,
    'rate_limit_error',
    null,
    'too_many_auth_failures',
    { 'retry-after': String(retryAfterSeconds) },
  );
}

/** A browser navigating to a console page (not a script or an API client asking for JSON). */
function isPageLoad(request: Request): boolean {
  return (
    (request.method === 'GET' || request.method === 'HEAD') &&
    isConsolePath(request.path) &&
    (request.get('accept') ?? '').includes('text/html')
  );
}

/**
 * A page that sends a browser to the login form. It answers 401, not a
 * redirect: nothing behind the gate answers 2xx or 3xx without a key.
 */
function loginPage(request: Request, response: Response): void {
  const target = `/console/login?next=${encodeURIComponent(request.originalUrl)}`;
  const escaped = target.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;');
  response
    .status(401)
    .set(securityHeaders())
    .type('html')
    .send(
      '<!doctype html><html lang="en"><head><meta charset="utf-8">' +
        `<meta http-equiv="refresh" content="0; url=${escaped}"><title>Log in</title></head>` +
        `<body><p>Log in to continue: <a href="${escaped}">/console/login</a></p></body></html>`,
    );
}

/**
 * The one gate in front of every router: it decides who a request acts for
 * before any route runs. Public paths (exact, case-sensitive) pass; every
 * other path needs a bearer key, or — for the console and bull-board only —
 * a console session cookie, whose state-changing requests must come from
 * this origin. Addresses with too many failed keys get 429 before any key
 * is compared. bull-board is for admin keys alone (403 for others). With no
 * keys configured (the API then listens on loopback only) every request acts
 * for the one tenant, `default`.
 */
export function accessGate(options: AccessGateOptions): RequestHandler {
  const { keyring, sessions, throttle } = options;

  async function authenticate(request: Request): Promise<Principal | undefined> {
    const bearer = bearerKey(request);
    if (bearer !== undefined) {
      const address = clientAddress(request);
      const waitSeconds = await throttle.blockedFor(address);
      if (waitSeconds > 0) throw tooManyFailures(waitSeconds);
      const key = keyring.identify(bearer);
      if (!key) {
        await throttle.recordFailure(address);
        throw new ApiError(
          401,
          'Incorrect API key provided',
          'invalid_request_error',
          null,
          'invalid_api_key',
        );
      }
      return { tenant: key.tenant, admin: key.admin, via: 'key' };
    }
    // The session cookie is the console's: the API itself takes bearer keys only.
    const sessionId = isConsolePath(request.path)
      ? readCookie(request.get('cookie'), CONSOLE_COOKIE)
      : undefined;
    if (!sessionId) return undefined;
    const session = await sessions.read(sessionId);
    // A session ends when its key is removed from the configuration.
    const key = session && keyring.byDigest(session.keyDigest);
    if (!key) return undefined;
    if (!SAFE_METHODS.has(request.method) && requestSite(request) !== 'same-origin') {
      throw new ApiError(
        403,
        'Cross-origin request refused: a console session can only change state from this origin',
        'invalid_request_error',
        null,
        'cross_origin_refused',
      );
    }
    return { tenant: key.tenant, admin: key.admin, via: 'session' };
  }

  return async (request, response, next) => {
    try {
      if (PUBLIC_PATHS.has(request.path)) return next();
      if (keyring.size === 0) {
        setPrincipal(response, OPEN_PRINCIPAL);
        return next();
      }
      const principal = await authenticate(request);
      if (!principal) {
        if (isPageLoad(request)) return loginPage(request, response);
        throw new ApiError(
          401,
          'Missing API key: send Authorization: Bearer <key>',
          'invalid_request_error',
          null,
          'missing_api_key',
        );
      }
      if (isAdminPath(request.path) && !principal.admin) {
        throw new ApiError(
          403,
          'bull-board is for admin keys only',
          'invalid_request_error',
          null,
          'admin_only',
        );
      }
      setPrincipal(response, principal);
      next();
    } catch (error) {
      next(error);
    }
  };
}
