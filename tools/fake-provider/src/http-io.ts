import { once } from 'node:events';
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { openAiErrorBody } from './openai-error.js';

/** Largest request body accepted; far above any prompt a test sends, small enough to stop a runaway client. */
const MAX_BODY_BYTES = 10 * 1024 * 1024;

/** An error that becomes an HTTP error response with an OpenAI error body. */
export class HttpError extends Error {
  override readonly name = 'HttpError';
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Reads and parses a JSON request body.
 * @throws HttpError 400 for malformed JSON, 413 for an oversized body.
 */
export async function readJsonBody(request: IncomingMessage): Promise<unknown> {
  const text = await new Promise<string>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    // An oversized body is drained, not destroyed, so the 413 can still reach the client.
    request.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_BODY_BYTES) chunks.push(chunk);
    });
    request.once('end', () => {
      if (size > MAX_BODY_BYTES) reject(new HttpError(413, `request body exceeds ${MAX_BODY_BYTES} bytes`));
      else resolve(Buffer.concat(chunks).toString('utf8'));
    });
    request.once('error', reject);
    // A client that hangs up mid-body fires 'close' without 'end'; settle so the handler can finish.
    request.once('close', () => {
      if (!request.complete) reject(new HttpError(499, 'client closed the request'));
    });
  });
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new HttpError(
      400,
      "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly.)",
    );
  }
}

/** Sends `body` as JSON, unless the response already started or the client is gone. */
export function sendJson(
  response: ServerResponse,
  status: number,
  body: unknown,
  headers: OutgoingHttpHeaders = {},
): void {
  if (response.headersSent || response.destroyed) return;
  const payload = JSON.stringify(body);
  response.writeHead(status, {
    ...headers,
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(payload),
  });
  response.end(payload);
}

/** Sends an OpenAI error object with `status`. */
export function sendError(
  response: ServerResponse,
  status: number,
  message?: string,
  headers: OutgoingHttpHeaders = {},
): void {
  sendJson(response, status, openAiErrorBody(status, message), headers);
}

/**
 * Writes one server-sent event, waiting for the socket to drain when its
 * buffer is full so a long stream to a slow reader doesn't pile up in memory.
 * Resolves `false` once the client is gone, telling the caller to stop.
 */
export async function writeEvent(
  response: ServerResponse,
  data: string,
  signal: AbortSignal,
): Promise<boolean> {
  if (signal.aborted || response.destroyed) return false;
  if (!response.write(`data: ${data}\n\n`)) {
    try {
      await once(response, 'drain', { signal });
    } catch {
      return false; // aborted while waiting: the client went away
    }
  }
  return !signal.aborted;
}
