import { chatCompletionOf } from './chat-completion.js';
import { jobView, type RequestSnapshot } from './job-view.js';
import { responseOf } from './responses.js';

/**
 * An output line: the item's chat completion, or its response for a
 * `/v1/responses` batch. `requestIdExpiresAt` (epoch seconds) is our
 * extension `response.request_id_expires_at`: until when `request_id`
 * stays readable with `GET /v1/jobs/{id}` (see docs/batch.md).
 */
export function batchOutputLine(
  lineId: string,
  customId: string,
  snapshot: RequestSnapshot,
  requestIdExpiresAt?: number,
): string {
  const view = jobView(snapshot);
  return JSON.stringify({
    id: lineId,
    custom_id: customId,
    response: {
      status_code: 200,
      request_id: view.id,
      ...(requestIdExpiresAt === undefined ? {} : { request_id_expires_at: requestIdExpiresAt }),
      body: snapshot.data.batch?.response
        ? responseOf(view, snapshot.data.batch.response)
        : chatCompletionOf(view),
    },
    error: null,
  });
}

/**
 * An error line; `response` is set when the item ran (an HTTP-like status
 * and an OpenAI error body), with `request_id_expires_at` as on output lines.
 */
export function batchErrorLine(
  lineId: string,
  customId: string | null,
  error: { code: string; message: string; type?: string; param?: string | null },
  response?: { statusCode: number; requestId: string; requestIdExpiresAt?: number },
): string {
  return JSON.stringify({
    id: lineId,
    custom_id: customId,
    response: response
      ? {
          status_code: response.statusCode,
          request_id: response.requestId,
          ...(response.requestIdExpiresAt === undefined
            ? {}
            : { request_id_expires_at: response.requestIdExpiresAt }),
          body: {
            error: {
              message: error.message,
              type: error.type ?? 'invalid_request_error',
              param: error.param ?? null,
              code: error.code,
            },
          },
        }
      : null,
    error: { code: error.code, message: error.message },
  });
}
