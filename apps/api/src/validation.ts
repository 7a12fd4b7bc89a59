import { describeRequestIssue } from '@moa-queue/contract';
import type { z } from 'zod';
import { ApiError } from './api-error.js';

/**
 * Parses `value` with `schema` or throws a 400 naming the first offending
 * field: `invalid_value`, or `unsupported_parameter` for a parameter the
 * server cannot honour (whose message says so itself).
 */
export function parseOrThrow<T>(schema: z.ZodType<T>, value: unknown): T {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const { param, code, message } = describeRequestIssue(result.error, 'invalid_value');
  throw new ApiError(400, message, 'invalid_request_error', param, code);
}
