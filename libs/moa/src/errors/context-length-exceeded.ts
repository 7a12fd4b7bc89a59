import type { CallRecord } from '../types.js';

/**
 * The error code of a call whose prompt and `max_tokens` do not fit its
 * model's context window: OpenAI's code, used whether the provider said so
 * (a 400) or our own measure did (the call was then not sent).
 */
export const CONTEXT_LENGTH_EXCEEDED = 'context_length_exceeded';

/**
 * How providers word a context-length refusal when they give no code:
 * OpenAI and vLLM ("This model's maximum context length is N tokens…"),
 * newer vLLM ("…is too long to fit into the model (context length N)"),
 * Together and TGI ("`inputs` tokens + `max_new_tokens` must be <= N"),
 * Mistral ("…too large for model with N maximum context length"), llama.cpp
 * ("the request exceeds the available context size"), Anthropic-compatible
 * ones ("prompt is too long").
 */
const CONTEXT_LENGTH_MESSAGE =
  /maximum context length|context length \d+|\(context length|exceeds the available context size|context window|prompt is too long|tokens \+ `?max_new_tokens`? must be <=/i;

/** Provider codes that mean the same: OpenAI's and Groq's, and llama.cpp's. */
const CONTEXT_LENGTH_CODES = new Set([CONTEXT_LENGTH_EXCEEDED, 'exceed_context_size_error']);

/**
 * Whether a provider's error answer says the prompt and `max_tokens` do not
 * fit the model's context window: a 400, 413 or 422 with OpenAI's code
 * `context_length_exceeded` (or llama.cpp's), or a message worded as one.
 */
export function isContextLengthExceeded(status: number, message: string, code?: string | null): boolean {
  if (status !== 400 && status !== 413 && status !== 422) return false;
  return (
    (code !== undefined && code !== null && CONTEXT_LENGTH_CODES.has(code)) ||
    CONTEXT_LENGTH_MESSAGE.test(message)
  );
}

/** Whether a call failed because its prompt did not fit its model's context window. */
export function failedForContextLength(call: Pick<CallRecord, 'status' | 'error'>): boolean {
  return call.status === 'failed' && call.error?.code === CONTEXT_LENGTH_EXCEEDED;
}
