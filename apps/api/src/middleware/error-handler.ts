import type { ErrorRequestHandler, RequestHandler } from 'express';
import type { Logger } from 'pino';
import { ApiError } from '../api-error.js';
import { redisApiErrorOf } from '../redis-errors.js';

/** Maps body-parser's failures to OpenAI-style errors. */
function fromBodyParser(error: { type?: string; message?: string; limit?: number }): ApiError | undefined {
  if (error.type === 'entity.too.large') {
    return new ApiError(
      413,
      `Request body is larger than ${error.limit} bytes`,
      'invalid_request_error',
      null,
      'request_too_large',
    );
  }
  if (error.type === 'entity.parse.failed') {
    return new ApiError(
      400,
      `Request body is not valid JSON: ${error.message}`,
      'invalid_request_error',
      null,
      'invalid_json',
    );
  }
  if (error.type === 'encoding.unsupported' || error.type === 'charset.unsupported') {
    return new ApiError(
      415,
      error.message ?? 'unsupported encoding',
      'invalid_request_error',
      null,
      'unsupported_media_type',
    );
  }
  if (error.type === 'request.aborted') {
    return new ApiError(
      400,
      'request aborted by the client',
      'invalid_request_error',
      null,
      'request_aborted',
    );
  }
  return undefined;
}

/**
 * Maps any other client error that carries an HTTP status (`http-errors`
 * style): a malformed percent-encoding in the path (the router's `URIError`,
 * status 400) or a corrupt compressed body (a zlib error that body-parser
 * gives status 400). Without this they would leave as 500s.
 */
function fromClientError(error: {
  status?: unknown;
  statusCode?: unknown;
  expose?: unknown;
  message?: unknown;
}): ApiError | undefined {
  const status = typeof error.status === 'number' ? error.status : error.statusCode;
  if (typeof status !== 'number' || !Number.isInteger(status) || status < 400 || status > 499)
    return undefined;
  if (error instanceof URIError) {
    return new ApiError(
      400,
      'The URL path is not valid percent-encoding',
      'invalid_request_error',
      null,
      'invalid_url',
    );
  }
  const detail =
    error.expose === true && typeof error.message === 'string' && error.message ? `: ${error.message}` : '';
  return new ApiError(status, `Invalid request${detail}`, 'invalid_request_error', null, 'invalid_request');
}

/** 4xx answers that a client may usefully repeat as they are (the other 4xx need a changed request). */
const RETRYABLE_CODES = new Set(['idempotency_key_in_use']);

/**
 * `x-should-retry` of an error answer, as the OpenAI SDKs read it: they
 * retry 408, 409, 429 and 5xx unless told `false`, and nothing else unless
 * told `true`. Here: true for 408, 429, 5xx and a 409 that a retry can clear
 * (`idempotency_key_in_use`); false for every other 4xx, whose request must
 * change first. An error may set its own in `headers`.
 */
export function shouldRetry(error: ApiError): boolean {
  if (error.status >= 500 || error.status === 408 || error.status === 429) return true;
  return error.code !== null && RETRYABLE_CODES.has(error.code);
}

/** The innermost message of an error: what Redis or the client library said. */
function reasonOf(error: unknown): string {
  let current = error;
  for (let depth = 0; depth < 5 && current instanceof Error && current.cause instanceof Error; depth += 1) {
    current = current.cause;
  }
  return current instanceof Error ? current.message : String(current);
}

/**
 * Logs requests answered 503 for a Redis fault without one line (let alone
 * a stack) per request: the first at `warn`, then at most one a minute
 * with how many there were. Redis' own state changes are logged by
 * `watchRedisHealth`.
 */
function redisFaultLog(logger: Logger, intervalMs = 60_000) {
  let last = 0;
  let count = 0;
  return (apiError: ApiError, error: unknown) => {
    count += 1;
    const now = Date.now();
    if (now - last < intervalMs) return;
    logger.warn(
      {
        code: apiError.code,
        requests: count,
        reason: reasonOf(error),
      },
      'requests answered 503: Redis cannot serve them',
    );
    last = now;
    count = 0;
  };
}

/**
 * The last middleware: every error leaves as an OpenAI error object, never
 * an HTML page, with `x-should-retry`. A Redis fault (unreachable, timing
 * out, full) is a 503 with `Retry-After` (see `redis-errors.ts`), logged at
 * most at warn; any other unexpected error is a 500 logged with its stack.
 */
export function errorHandler(logger: Logger): ErrorRequestHandler {
  const noteRedisFault = redisFaultLog(logger);
  return (error, request, response, next) => {
    if (response.headersSent) return next(error);
    const candidate = (typeof error === 'object' && error !== null ? error : {}) as Record<string, unknown>;
    const apiError =
      error instanceof ApiError
        ? error
        : (fromBodyParser(candidate) ??
          fromClientError(candidate) ??
          redisApiErrorOf(error) ??
          new ApiError(500, 'internal server error', 'server_error', null, 'internal_error'));
    if (apiError.code === 'redis_unavailable' || apiError.code === 'redis_full') {
      noteRedisFault(apiError, error);
    } else if (apiError.status >= 500) {
      logger.error(
        {
          requestId: response.locals.requestId,
          method: request.method,
          path: request.path,
          error: String(error?.stack ?? error),
        },
        'request failed',
      );
    }
    response
      .status(apiError.status)
      .set({ 'x-should-retry': String(shouldRetry(apiError)), ...apiError.headers })
      .json(apiError.toBody());
  };
}

/** 404 for any route the API does not have. */
export function notFound(): RequestHandler {
  return (request, _response, next) => {
    next(
      new ApiError(
        404,
        `Unknown route: ${request.method} ${request.path}`,
        'invalid_request_error',
        null,
        'not_found',
      ),
    );
  };
}

/** 405 for a known route called with a method it does not support. */
export function methodNotAllowed(allowed: string[]): RequestHandler {
  return (request, response, next) => {
    response.setHeader('allow', allowed.join(', '));
    next(
      new ApiError(
        405,
        `Method ${request.method} is not allowed on ${request.path}; use ${allowed.join(' or ')}`,
        'invalid_request_error',
        null,
        'method_not_allowed',
      ),
    );
  };
}
