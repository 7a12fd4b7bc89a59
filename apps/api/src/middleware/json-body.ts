import express, { type RequestHandler } from 'express';
import { ApiError } from '../api-error.js';

/**
 * Parses JSON bodies up to `limitBytes`; a body of another content type on
 * a method that carries one is a 415, so a form post never passes as empty.
 */
export function jsonBody(limitBytes: number): RequestHandler[] {
  const parse = express.json({ limit: limitBytes, strict: false, type: () => true });
  const requireJson: RequestHandler = (request, _response, next) => {
    const hasBody =
      Number(request.get('content-length') ?? 0) > 0 || request.get('transfer-encoding') !== undefined;
    if (!['POST', 'PUT', 'PATCH'].includes(request.method) || !hasBody) return next();
    if (!request.is('application/json') && !request.is('application/*+json')) {
      return next(
        new ApiError(
          415,
          `Content-Type must be application/json, got ${request.get('content-type') ?? 'none'}`,
          'invalid_request_error',
          null,
          'unsupported_media_type',
        ),
      );
    }
    parse(request, _response, next);
  };
  return [requireJson];
}
