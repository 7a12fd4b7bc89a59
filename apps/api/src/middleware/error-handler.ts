import type { ErrorRequestHandler, RequestHandler } from 'express';
import type { Logger } from 'pino';
import { ApiError } from '../api-error.js';

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

/** The last middleware: every error leaves as an OpenAI error object, never an HTML page. */
export function errorHandler(logger: Logger): ErrorRequestHandler {
  return (error, request, response, next) => {
    if (response.headersSent) return next(error);
    const candidate = (typeof error === 'object' && error !== null ? error : {}) as Record<string, unknown>;
    const apiError =
      error instanceof ApiError
        ? error
        : (fromBodyParser(candidate) ??
          fromClientError(candidate) ??
          new ApiError(500, 'internal server error', 'server_error', null, 'internal_error'));
    if (apiError.status >= 500) {
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
    response.status(apiError.status).set(apiError.headers).json(apiError.toBody());
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
