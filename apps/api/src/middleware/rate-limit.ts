import type { RequestHandler } from 'express';
import type { Redis } from 'ioredis';
import { ApiError } from '../api-error.js';
import type { Principal } from '../principal.js';
import { createTokenBucket } from '../token-bucket.js';

/** OpenAI's duration format for `x-ratelimit-reset-requests`: `1s`, `6m0s`, `250ms`. */
export function resetDuration(milliseconds: number): string {
  if (milliseconds < 1000) return `${Math.max(0, Math.ceil(milliseconds))}ms`;
  const seconds = Math.ceil(milliseconds / 1000);
  const minutes = Math.floor(seconds / 60);
  return minutes > 0 ? `${minutes}m${seconds % 60}s` : `${seconds}s`;
}

/**
 * Per-tenant request limit (`MOA_RATE_LIMIT_RPM`), shared by every API
 * replica: a token bucket of `requestsPerMinute` requests refilled at that
 * rate. Every answer carries OpenAI's `x-ratelimit-limit-requests`,
 * `x-ratelimit-remaining-requests` and `x-ratelimit-reset-requests`; past the
 * limit, 429 with `Retry-After` (whole seconds until the next request may
 * pass). Callers are told apart by tenant (by address on a public path);
 * `scope` keeps separate limits apart.
 */
export function rateLimit(
  redis: Redis,
  prefix: string,
  requestsPerMinute: number,
  scope = 'api',
): RequestHandler {
  if (requestsPerMinute <= 0) return (_request, _response, next) => next();
  const take = createTokenBucket(redis);
  return async (request, response, next) => {
    const principal = response.locals.principal as Principal | undefined;
    const caller = principal ? `tenant:${principal.tenant}` : `ip:${request.ip}`;
    try {
      const taken = await take(`${prefix}:moa-rate:${scope}:${caller}`, requestsPerMinute);
      response.set({
        'x-ratelimit-limit-requests': String(requestsPerMinute),
        'x-ratelimit-remaining-requests': String(taken.remaining),
        'x-ratelimit-reset-requests': resetDuration(taken.resetMs),
      });
      if (taken.allowed) return next();
      const retryAfter = Math.max(1, Math.ceil(taken.retryAfterMs / 1000));
      next(
        new ApiError(
          429,
          `Rate limit of ${requestsPerMinute} requests per minute reached; retry in ${retryAfter} s`,
          'rate_limit_error',
          null,
          'rate_limit_exceeded',
          { 'retry-after': String(retryAfter) },
        ),
      );
    } catch (error) {
      next(error);
    }
  };
}
