import { createHash, timingSafeEqual } from 'node:crypto';
import type { RequestHandler } from 'express';
import { ApiError } from '../api-error.js';

/** Paths that never need a key: probes and metrics carry no user data. */
export const PUBLIC_PATHS = new Set(['/healthz', '/readyz', '/metrics']);

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}

/**
 * Bearer-key auth when keys are configured. Keys are compared as SHA-256
 * digests with `timingSafeEqual`, so neither length nor content leaks
 * through timing. With no keys configured every request passes.
 */
export function auth(apiKeys: string[]): RequestHandler {
  const digests = apiKeys.map(digest);
  return (request, response, next) => {
    if (digests.length === 0 || PUBLIC_PATHS.has(request.path)) return next();
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
    const given = digest(match[1]!.trim());
    let valid = false;
    for (const candidate of digests) valid = timingSafeEqual(given, candidate) || valid;
    if (!valid) {
      return next(
        new ApiError(401, 'Incorrect API key provided', 'invalid_request_error', null, 'invalid_api_key'),
      );
    }
    response.locals.apiKeyDigest = given.toString('hex').slice(0, 16);
    next();
  };
}
