import type { RecordedMessage, RecordedSampling } from './recorded-request.js';
import type { FakeResponseFormat } from './structured-answer.js';

/** The parts of an OpenAI chat completion request body the fake acts on. */
export interface ChatCompletionRequest extends RecordedSampling {
  model: string;
  messages: RecordedMessage[];
  temperature?: number;
  maxTokens?: number;
  stream: boolean;
  /** `stream_options.include_usage`: append a usage chunk to the stream. */
  includeUsage: boolean;
  /** `response_format` when not `text`: the answer is JSON. */
  responseFormat?: FakeResponseFormat;
  /** `response_format` exactly as sent, for the record. */
  rawResponseFormat?: Record<string, unknown>;
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

/** A number parameter within OpenAI's bounds, or undefined when absent or null. */
function boundedNumber(
  body: Record<string, unknown>,
  name: string,
  min: number,
  max: number,
): number | undefined {
  const value = body[name];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) {
    throw new InvalidRequestError(`${name} must be a number from ${min} to ${max}`);
  }
  return value;
}

function parseStop(value: unknown): string[] | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'string') return [value];
  if (Array.isArray(value) && value.length <= 4 && value.every((entry) => typeof entry === 'string')) {
    return [...(value as string[])];
  }
  throw new InvalidRequestError('stop must be a string or an array of at most 4 strings');
}

function parseResponseFormat(value: unknown): FakeResponseFormat | undefined {
  if (value === undefined || value === null) return undefined;
  if (!isRecord(value)) throw new InvalidRequestError('response_format must be an object');
  if (value.type === 'text' || value.type === 'json_object') return { type: value.type };
  if (value.type === 'json_schema') {
    const spec = value.json_schema;
    if (!isRecord(spec) || typeof spec.name !== 'string' || spec.name === '') {
      throw new InvalidRequestError('response_format.json_schema must be an object with a name');
    }
    if (spec.schema !== undefined && !isRecord(spec.schema)) {
      throw new InvalidRequestError('response_format.json_schema.schema must be an object');
    }
    return { type: 'json_schema', name: spec.name, schema: spec.schema, strict: spec.strict === true };
  }
  throw new InvalidRequestError('response_format.type must be text, json_object or json_schema');
}

/** The sampling parameters besides temperature and max_tokens, checked to OpenAI's ranges. */
function parseSampling(body: Record<string, unknown>): RecordedSampling {
  const sampling: RecordedSampling = {};
  const topP = boundedNumber(body, 'top_p', 0, 1);
  if (topP !== undefined) sampling.topP = topP;
  const presence = boundedNumber(body, 'presence_penalty', -2, 2);
  if (presence !== undefined) sampling.presencePenalty = presence;
  const frequency = boundedNumber(body, 'frequency_penalty', -2, 2);
  if (frequency !== undefined) sampling.frequencyPenalty = frequency;
  if (body.seed !== undefined && body.seed !== null) {
    if (typeof body.seed !== 'number' || !Number.isInteger(body.seed)) {
      throw new InvalidRequestError('seed must be an integer');
    }
    sampling.seed = body.seed;
  }
  const stop = parseStop(body.stop);
  if (stop !== undefined) sampling.stop = stop;
  return sampling;
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
  const temperature = boundedNumber(body, 'temperature', 0, 2);
  if (temperature !== undefined) request.temperature = temperature;
  const maxTokens = parseMaxTokens(body);
  if (maxTokens !== undefined) request.maxTokens = maxTokens;
  Object.assign(request, parseSampling(body));
  const responseFormat = parseResponseFormat(body.response_format);
  if (responseFormat !== undefined) {
    // What was asked, `text` included, is recorded; only a JSON format changes the answer.
    request.rawResponseFormat = body.response_format as Record<string, unknown>;
    if (responseFormat.type !== 'text') request.responseFormat = responseFormat;
  }
  return request;
}
