import type { RequestHandler } from 'express';
import type { Redis } from 'ioredis';
import { ApiError } from '../api-error.js';
import type { Principal } from '../principal.js';

/**
 * Per-caller request limit in Redis (a fixed one-minute window shared by
 * every API replica): 429 with `Retry-After` past `requestsPerMinute`.
 * Callers are told apart by tenant (or address, on a public path); `scope`
 * keeps separate limits apart.
 */
export function rateLimit(
  redis: Redis,
  prefix: string,
  requestsPerMinute: number,
  scope = 'api',
): RequestHandler {
  return async (request, response, next) => {
    if (requestsPerMinute <= 0) return next();
    const principal = response.locals.principal as Principal | undefined;
    const caller = principal ? `tenant:${principal.tenant}` : `ip:${request.ip}`;
    const window = Math.floor(Date.now() / 60_000);
    const key = `${prefix}:moa-rate:${scope}:${caller}:${window}`;
    try {
      const [[, count]] = (await redis.multi().incr(key).expire(key, 120).exec()) as [[unknown, number]];
      if (count > requestsPerMinute) {
        const retryAfter = Math.max(1, Math.ceil(((window + 1) * 60_000 - Date.now()) / 1000));
        return next(
          new ApiError(
            429,
            `Rate limit of ${requestsPerMinute} requests per minute reached; retry in ${retryAfter} s`,
            'rate_limit_error',
            null,
            'rate_limit_exceeded',
            { 'retry-after': String(retryAfter) },
          ),
        );
      }
    } catch (error) {
      return next(error);
    }
    next();
  };
}
