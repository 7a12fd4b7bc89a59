import type { RecordedMessage } from './recorded-request.js';

/** The parts of an OpenAI chat completion request body the fake acts on. */
export interface ChatCompletionRequest {
  model: string;
  messages: RecordedMessage[];
  temperature?: number;
  maxTokens?: number;
  stream: boolean;
  /** `stream_options.include_usage`: append a usage chunk to the stream. */
  includeUsage: boolean;
}

/** Thrown for a body OpenAI would reject; the server answers 400 `invalid_request_error`. */
export class InvalidRequestError extends Error {
  override readonly name = 'InvalidRequestError';
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Flattens message content to text. OpenAI also accepts an array of content
 * parts; only the text parts matter for the fake's hashing and token counts.
 */
function contentText(content: unknown, index: number): string {
  if (content === undefined || content === null) return '';
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) {
    return content
      .map((part: unknown) => (isRecord(part) && typeof part.text === 'string' ? part.text : ''))
      .join('');
  }
  throw new InvalidRequestError(`messages[${index}].content must be a string or an array of content parts`);
}

function parseMessages(value: unknown): RecordedMessage[] {
  if (!Array.isArray(value) || value.length === 0) {
    throw new InvalidRequestError('messages must be a non-empty array');
  }
  return value.map((message: unknown, index) => {
    if (!isRecord(message) || typeof message.role !== 'string') {
      throw new InvalidRequestError(`messages[${index}] must be an object with a string role`);
    }
    return { role: message.role, content: contentText(message.content, index) };
  });
}

function parseMaxTokens(body: Record<string, unknown>): number | undefined {
  // Newer clients send max_completion_tokens; it supersedes max_tokens, as on OpenAI.
  const value = body.max_completion_tokens ?? body.max_tokens;
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
    throw new InvalidRequestError('max_tokens must be a positive integer');
  }
  return value;
}

/**
 * Validates a parsed JSON body as a chat completion request.
 * @throws InvalidRequestError when OpenAI would answer 400.
 */
export function parseChatCompletionRequest(body: unknown): ChatCompletionRequest {
  if (!isRecord(body)) throw new InvalidRequestError('the request body must be a JSON object');
  if (typeof body.model !== 'string' || body.model.trim() === '') {
    throw new InvalidRequestError('model must be a non-empty string');
  }
  const request: ChatCompletionRequest = {
    model: body.model,
    messages: parseMessages(body.messages),
    stream: body.stream === true,
    includeUsage: isRecord(body.stream_options) && body.stream_options.include_usage === true,
  };
  if (typeof body.temperature === 'number') request.temperature = body.temperature;
  const maxTokens = parseMaxTokens(body);
  if (maxTokens !== undefined) request.maxTokens = maxTokens;
  return request;
}
