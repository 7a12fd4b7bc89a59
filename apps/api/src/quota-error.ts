import { ApiError } from './api-error.js';

/** The codes of quota refusals (DESIGN §4). */
export type QuotaCode =
  'quota_active_jobs' | 'quota_active_batch_items' | 'quota_file_bytes' | 'quota_streams';

/**
 * A 429 for a tenant past one of its quotas, with `Retry-After`: the
 * quota frees up as the tenant's own work ends, so the client retries later
 * rather than at once.
 */
export function quotaExceeded(options: {
  code: QuotaCode;
  message: string;
  retryAfterSeconds?: number;
}): ApiError {
  return new ApiError(429, options.message, 'rate_limit_error', null, options.code, {
    'retry-after': String(options.retryAfterSeconds ?? 30),
  });
}
