import type { z } from 'zod';
import { requestIssueCode, UNSUPPORTED_PARAMETER } from './request-options.js';

/** Formats a zod issue path like OpenAI's `param`: `messages[0].role`. */
export function formatParam(path: readonly PropertyKey[]): string | null {
  if (path.length === 0) return null;
  return path
    .map((part, index) =>
      typeof part === 'number' ? `[${part}]` : `${index === 0 ? '' : '.'}${String(part)}`,
    )
    .join('');
}

/** The first problem of a request body, as an OpenAI error names it. */
export interface RequestIssue {
  /** The offending field (`messages[0].role`), or null for the body as a whole. */
  param: string | null;
  /** `unsupported_parameter`, or the caller's default code. */
  code: string;
  message: string;
}

/**
 * Describes the first issue of a failed request schema the same way for the
 * API's answers and a batch's error lines: an unknown key is reported at its
 * own path, and an unsupported parameter's message speaks for itself.
 */
export function describeRequestIssue(error: z.ZodError, fallbackCode: string): RequestIssue {
  const issue = error.issues[0];
  const keys = issue?.code === 'unrecognized_keys' ? issue.keys : [];
  const param = formatParam([...(issue?.path ?? []), ...keys.slice(0, 1)]);
  const code = requestIssueCode(issue, fallbackCode);
  const message =
    code === UNSUPPORTED_PARAMETER
      ? (issue?.message ?? 'Unsupported parameter')
      : param
        ? `Invalid ${param}: ${issue?.message}`
        : `Invalid request body: ${issue?.message}`;
  return { param, code, message };
}
