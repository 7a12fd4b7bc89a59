import {
  createServer,
  type IncomingMessage,
  type RequestListener,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { ApiError } from './api-error.js';

/** Limits of the API's HTTP listener against slow and numerous clients. */
export interface HttpLimits {
  /** A request's headers must arrive within this long of its first byte (`MOA_HEADERS_TIMEOUT_MS`). */
  headersTimeoutMs: number;
  /** Its body within this long of its headers (`MOA_BODY_TIMEOUT_MS`), uploads excepted. */
  bodyTimeoutMs: number;
  /** The body of a file upload (`POST /v1/files`) within this long (`MOA_UPLOAD_TIMEOUT_MS`). */
  uploadTimeoutMs: number;
  /** Open connections per process; more are closed as they arrive (`MOA_MAX_CONNECTIONS`). */
  maxConnections: number;
}

/** The defaults of {@link HttpLimits}, as documented in the README. */
export const DEFAULT_HTTP_LIMITS: HttpLimits = {
  headersTimeoutMs: 20_000,
  bodyTimeoutMs: 60_000,
  uploadTimeoutMs: 600_000,
  maxConnections: 10_000,
};

/** Whether a request is a file upload, whose body has `uploadTimeoutMs` rather than `bodyTimeoutMs`. */
export function isUpload(request: IncomingMessage): boolean {
  if (request.method !== 'POST') return false;
  const url = request.url ?? '';
  const end = url.indexOf('?');
  return (end === -1 ? url : url.slice(0, end)) === '/v1/files';
}

/**
 * Writes an OpenAI error object outside Express (the listener's own answers),
 * with `connection: close`: the request it answers was not read to its end.
 */
export function writeApiError(response: ServerResponse, error: ApiError): void {
  if (response.headersSent) return;
  const body = JSON.stringify(error.toBody());
  response.writeHead(error.status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    connection: 'close',
    'x-should-retry': 'true',
    ...error.headers,
  });
  response.end(body);
}

/**
 * Cuts a request whose body has not fully arrived `timeoutMs` after its
 * headers: 408 (an OpenAI error object) when nothing was answered yet, then
 * the connection is closed; a request whose body is complete is left alone,
 * however long its answer takes (an SSE stream, a waiting chat completion).
 */
function armBodyDeadline(request: IncomingMessage, response: ServerResponse, timeoutMs: number): void {
  if (timeoutMs <= 0) return;
  const timer = setTimeout(() => {
    if (request.complete) return;
    const socket = request.socket;
    if (response.headersSent || response.writableEnded) {
      socket.destroy();
      return;
    }
    writeApiError(
      response,
      new ApiError(
        408,
        `The request body did not arrive within ${Math.round(timeoutMs / 1000)} seconds`,
        'invalid_request_error',
        null,
        'request_timeout',
      ),
    );
    // The client may still be sending: give the answer a moment to leave, then close.
    setTimeout(() => socket.destroy(), 1000).unref();
  }, timeoutMs);
  timer.unref();
  const clear = () => clearTimeout(timer);
  request.once('end', clear);
  request.socket.once('close', clear);
  response.once('close', () => {
    if (request.complete) clear();
  });
}

/** Options of {@link createApiServer}. */
export interface ApiServerOptions extends Partial<HttpLimits> {
  /** Told (at most once a minute) when connections are refused for the cap. */
  logger?: Logger;
}

/**
 * The API's HTTP server with its limits against slow and numerous clients.
 *
 * - Headers: Node's `headersTimeout`, checked every second or sooner
 *   (`connectionsCheckingInterval`; Node's default of 30 s would let a
 *   20 s limit run to 50 s). A connection that sends nothing, or trickles
 *   its headers, gets a 408 error object and is closed (as do malformed
 *   requests, 400, and oversized headers, 431).
 * - Body: a timer per request from its headers, `bodyTimeoutMs`, or
 *   `uploadTimeoutMs` for `POST /v1/files` (Node's `requestTimeout` is one
 *   value for every request, so it is only the backstop, set to the upload
 *   limit plus the headers limit).
 * - Connections: `server.maxConnections`; Node closes each connection past
 *   the cap as soon as it is accepted (clients see a reset and retry).
 */
export function createApiServer(listener: RequestListener, options: ApiServerOptions = {}): Server {
  const limits: HttpLimits = { ...DEFAULT_HTTP_LIMITS, ...withoutUndefined(options) };
  const server = createServer(
    {
      headersTimeout: limits.headersTimeoutMs,
      requestTimeout: limits.headersTimeoutMs + Math.max(limits.uploadTimeoutMs, limits.bodyTimeoutMs),
      connectionsCheckingInterval: Math.max(25, Math.min(1000, Math.floor(limits.headersTimeoutMs / 4))),
    },
    (request, response) => {
      armBodyDeadline(request, response, isUpload(request) ? limits.uploadTimeoutMs : limits.bodyTimeoutMs);
      listener(request, response);
    },
  );
  server.on('clientError', answerClientError);
  server.maxConnections = limits.maxConnections;
  let dropped = 0;
  let lastWarning = 0;
  server.on('drop', () => {
    dropped += 1;
    const now = Date.now();
    if (options.logger && now - lastWarning >= 60_000) {
      options.logger.warn(
        { maxConnections: limits.maxConnections, refused: dropped },
        'connection limit reached: refusing new connections',
      );
      lastWarning = now;
      dropped = 0;
    }
  });
  return server;
}

/**
 * What Node's HTTP parser refuses before there is a request (headers too
 * slow, too large, malformed) is answered as every other error: an OpenAI
 * error object with `x-should-retry` (Node's own answer is a bare status
 * line), then the connection is closed.
 */
function answerClientError(error: NodeJS.ErrnoException, socket: Duplex): void {
  if (socket.writable && (socket as Duplex & { bytesWritten?: number }).bytesWritten === 0) {
    const [status, reason, code, message] =
      error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? [408, 'Request Timeout', 'request_timeout', 'The request did not arrive in time']
        : error.code === 'HPE_HEADER_OVERFLOW'
          ? [431, 'Request Header Fields Too Large', 'headers_too_large', 'The request headers are too large']
          : [400, 'Bad Request', 'invalid_http', 'The request is not valid HTTP'];
    const body = JSON.stringify(new ApiError(status, message, 'invalid_request_error', null, code).toBody());
    socket.end(
      `HTTP/1.1 ${status} ${reason}\r\n` +
        'content-type: application/json; charset=utf-8\r\n' +
        `content-length: ${Buffer.byteLength(body)}\r\n` +
        `x-should-retry: ${status === 408 ? 'true' : 'false'}\r\n` +
        'connection: close\r\n\r\n' +
        body,
    );
    // The client may be sending still: the answer leaves, then the socket closes.
    setTimeout(() => socket.destroy(), 1000).unref();
    return;
  }
  socket.destroy();
}

function withoutUndefined(options: ApiServerOptions): Partial<HttpLimits> {
  const limits: Partial<HttpLimits> = {};
  for (const key of Object.keys(DEFAULT_HTTP_LIMITS) as (keyof HttpLimits)[]) {
    const value = options[key];
    if (value !== undefined) limits[key] = value;
  }
  return limits;
}
