import { requestIssueCode, UNSUPPORTED_PARAMETER } from '@moa-queue/contract';
import type { z } from 'zod';
import { ApiError } from './api-error.js';

/** Formats a zod issue path like OpenAI's `param`: `messages[0].role`. */
export function formatParam(path: readonly PropertyKey[]): string | null {
  if (path.length === 0) return null;
  return path
    .map((part, index) =>
      typeof part === 'number' ? `[${part}]` : `${index === 0 ? '' : '.'}${String(part)}`,
    )
    .join('');
}

/**
 * Parses `value` with `schema` or throws a 400 naming the first offending
 * field: `invalid_value`, or `unsupported_parameter` for a parameter the
 * server cannot honour (whose message says so itself).
 */
export function parseOrThrow<T>(schema: z.ZodType<T>, value: unknown): T {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  // An unknown key is reported at its own path, so `param` names the offending field.
  const keys = issue?.code === 'unrecognized_keys' ? issue.keys : [];
  const param = formatParam([...(issue?.path ?? []), ...keys.slice(0, 1)]);
  const code = requestIssueCode(issue, 'invalid_value');
  const message =
    code === UNSUPPORTED_PARAMETER
      ? (issue?.message ?? 'Unsupported parameter')
      : param
        ? `Invalid ${param}: ${issue?.message}`
        : `Invalid request body: ${issue?.message}`;
  throw new ApiError(400, message, 'invalid_request_error', param, code);
}
