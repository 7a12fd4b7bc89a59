/**
 * The `{"error": {...}}` body OpenAI-compatible APIs return on failure. The
 * official SDKs read `error.message`/`type`/`code` from it, so the fake
 * returns exactly this shape for every non-2xx answer.
 */
export interface OpenAiErrorBody {
  error: {
    message: string;
    type: string;
    param: string | null;
    code: string | null;
  };
}

/**
 * The OpenAI error `type` that goes with an HTTP status: 400
 * `invalid_request_error`, 401 `authentication_error`, 404 `not_found_error`,
 * 429 `rate_limit_error`, 5xx `server_error`.
 */
export function errorTypeForStatus(status: number): string {
  if (status === 401) return 'authentication_error';
  if (status === 403) return 'permission_error';
  if (status === 404) return 'not_found_error';
  if (status === 409) return 'conflict_error';
  if (status === 429) return 'rate_limit_error';
  if (status >= 500) return 'server_error';
  return 'invalid_request_error';
}

/** The machine-readable `code` OpenAI sends for the statuses clients branch on; null otherwise. */
function errorCodeForStatus(status: number): string | null {
  if (status === 429) return 'rate_limit_exceeded';
  if (status === 401) return 'invalid_api_key';
  return null;
}

/** A message good enough for logs when a script gives none. */
function defaultMessageForStatus(status: number): string {
  if (status === 401) return 'Incorrect API key provided.';
  if (status === 404) return 'The requested resource was not found.';
  if (status === 429) return 'Rate limit reached for requests.';
  if (status >= 500) return 'The server had an error while processing your request.';
  return 'Invalid request.';
}

/** Builds the OpenAI error object for `status`, with `message` or a default one. */
export function openAiErrorBody(status: number, message?: string): OpenAiErrorBody {
  return {
    error: {
      message: message ?? defaultMessageForStatus(status),
      type: errorTypeForStatus(status),
      param: null,
      code: errorCodeForStatus(status),
    },
  };
}
