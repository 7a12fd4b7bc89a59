import { jobView, type JobView, type RequestSnapshot } from './job-view.js';

/**
 * The `chat.completion` of a finished request, exactly as
 * `POST /v1/chat/completions` answers it (apps/api's chat-completion-view):
 * a batch's output line carries it as `response.body`.
 */
export function chatCompletionOf(view: JobView) {
  const { output, ...moa } = view;
  return {
    id: `chatcmpl-${view.id}`,
    object: 'chat.completion' as const,
    created: view.created_at,
    model: view.preset,
    choices: [
      {
        index: 0,
        message: { role: 'assistant' as const, content: output ?? '', refusal: null },
        logprobs: null,
        finish_reason: 'stop' as const,
      },
    ],
    usage: view.usage,
    system_fingerprint: null,
    moa,
  };
}

/** An output line: the item's chat completion. */
export function batchOutputLine(lineId: string, customId: string, snapshot: RequestSnapshot): string {
  const view = jobView(snapshot);
  return JSON.stringify({
    id: lineId,
    custom_id: customId,
    response: { status_code: 200, request_id: view.id, body: chatCompletionOf(view) },
    error: null,
  });
}

/** An error line; `response` is set when the item ran (an HTTP-like status and an OpenAI error body). */
export function batchErrorLine(
  lineId: string,
  customId: string | null,
  error: { code: string; message: string; type?: string; param?: string | null },
  response?: { statusCode: number; requestId: string },
): string {
  return JSON.stringify({
    id: lineId,
    custom_id: customId,
    response: response
      ? {
          status_code: response.statusCode,
          request_id: response.requestId,
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
