import { randomUUID } from 'node:crypto';
import type { RequestHandler } from 'express';

const ACCEPTABLE_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** Accepts a caller's `x-request-id` (when sane) or makes one, and echoes it on the response. */
export function requestId(): RequestHandler {
  return (request, response, next) => {
    const given = request.get('x-request-id');
    const id = given && ACCEPTABLE_ID.test(given) ? given : `req_${randomUUID().replaceAll('-', '')}`;
    response.locals.requestId = id;
    response.setHeader('x-request-id', id);
    next();
  };
}
