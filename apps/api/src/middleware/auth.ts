import { createHash } from 'node:crypto';
import type { RequestHandler } from 'express';
import { ApiError } from '../api-error.js';
import { createKeyCheck } from '../key-check.js';

/** Paths that never need a key: probes and metrics carry no user data. */
export const PUBLIC_PATHS = new Set(['/healthz', '/readyz', '/metrics']);

/**
 * Bearer-key auth when keys are configured (constant-time, see
 * `createKeyCheck`). With no keys configured every request passes. A caller
 * is then known by a digest of its key (for rate limits and idempotency),
 * never by the key itself.
 */
export function auth(apiKeys: string[]): RequestHandler {
  const check = createKeyCheck(apiKeys);
  return (request, response, next) => {
    if (apiKeys.length === 0 || PUBLIC_PATHS.has(request.path)) return next();
    const header = request.get('authorization') ?? '';
    const match = /^Bearer\s+(.+)$/i.exec(header);
    if (!match) {
      return next(
        new ApiError(
          401,
          'Missing API key: send Authorization: Bearer <key>',
          'invalid_request_error',
          null,
          'missing_api_key',
        ),
      );
    }
    const key = match[1]!.trim();
    if (!check(key)) {
      return next(
        new ApiError(401, 'Incorrect API key provided', 'invalid_request_error', null, 'invalid_api_key'),
      );
    }
    response.locals.apiKeyDigest = createHash('sha256').update(key).digest('hex').slice(0, 16);
    next();
  };
}
