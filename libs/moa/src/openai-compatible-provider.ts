import OpenAI, { APIConnectionError, APIConnectionTimeoutError, APIError, APIUserAbortError } from 'openai';
import type { ChatModel, ChatRequest, ChatResult } from './chat-model.js';
import { AuthenticationError } from './errors/authentication-error.js';
import { ProviderConnectionError } from './errors/connection-error.js';
import { ContentFilterError } from './errors/content-filter-error.js';
import { errorFromStatus } from './errors/error-from-status.js';
import { ProviderError } from './errors/provider-error.js';
import { ProviderTimeoutError } from './errors/timeout-error.js';
import { JsonPostConnectionError } from './errors/json-post-connection-error.js';
import { JsonPostTimeoutError } from './errors/json-post-timeout-error.js';
import { postJson } from './json-post.js';
import { retryAfterMsFromHeaders } from './retry-after.js';

/** Options of {@link createOpenAICompatibleProvider}. */
export interface OpenAICompatibleProviderOptions {
  /** The provider's name in the config, e.g. `together`. */
  name: string;
  /** Base URL of its OpenAI-compatible API, ending in `/v1`. */
  baseURL: string;
  /**
   * The API key; undefined for keyless local servers.
   * When `apiKeyEnv` names a variable that is not set, pass `missingKeyEnv`
   * instead so that calls fail with an authentication error.
   */
  apiKey?: string;
  /** Name of the unset key variable: every call fails with an `AuthenticationError` naming it. */
  missingKeyEnv?: string;
  /**
   * Per-call timeout in milliseconds.
   * @defaultValue 120000
   */
  timeoutMs?: number;
  /**
   * A custom fetch (tests, proxies): every call then goes through the SDK and
   * it. Without one, plain completions are posted over node:http(s) (see
   * json-post.ts for why) and streamed ones go through the SDK.
   */
  fetch?: typeof fetch;
}

function isAbort(error: unknown, signal: AbortSignal | undefined): boolean {
  return error instanceof APIUserAbortError || (signal?.aborted === true && !(error instanceof APIError));
}

/** Maps whatever the SDK threw to one of our `ProviderError` classes. */
function toProviderError(error: unknown, name: string): unknown {
  if (error instanceof ProviderError) return error;
  if (error instanceof APIConnectionTimeoutError || error instanceof JsonPostTimeoutError) {
    return new ProviderTimeoutError(`${name}: request timed out`, { cause: error });
  }
  if (error instanceof APIConnectionError || error instanceof JsonPostConnectionError) {
    return new ProviderConnectionError(`${name}: connection failed: ${error.message}`, { cause: error });
  }
  if (error instanceof APIError && typeof error.status === 'number') {
    const body = (error.error ?? {}) as { message?: unknown };
    const detail = typeof body.message === 'string' ? body.message : error.message;
    return errorFromStatus(error.status, `${name}: ${detail}`, {
      code: typeof error.code === 'string' ? error.code : null,
      retryAfterMs: retryAfterMsFromHeaders(error.headers),
      cause: error,
    });
  }
  return error;
}

/**
 * Creates a {@link ChatModel} for any OpenAI-compatible endpoint (Together,
 * OpenAI, Groq, OpenRouter, Ollama, vLLM…) on the official `openai` SDK with
 * its own retries off: retries belong to the queue, which can wait out a 429
 * for every worker at once and survive a crash mid-backoff.
 */
export function createOpenAICompatibleProvider(options: OpenAICompatibleProviderOptions): ChatModel {
  const client = new OpenAI({
    baseURL: options.baseURL,
    // The SDK insists on a key; keyless local servers ignore this placeholder.
    apiKey: options.apiKey ?? 'no-key',
    maxRetries: 0,
    timeout: options.timeoutMs ?? 120_000,
    ...(options.fetch ? { fetch: options.fetch } : {}),
  });
  const completionsUrl = new URL(`${options.baseURL.replace(/\/+$/, '')}/chat/completions`);
  const post: PlainPost = {
    url: completionsUrl,
    headers: { authorization: `Bearer ${options.apiKey ?? 'no-key'}`, 'user-agent': 'moa-queue' },
    timeoutMs: options.timeoutMs ?? 120_000,
    name: options.name,
  };

  async function complete(request: ChatRequest): Promise<ChatResult> {
    if (options.missingKeyEnv) {
      throw new AuthenticationError(
        `${options.name}: no API key: set the ${options.missingKeyEnv} environment variable`,
        { code: 'missing_api_key' },
      );
    }
    const body: CompletionBody = {
      model: request.model,
      messages: request.messages,
      temperature: request.temperature,
      max_tokens: request.maxTokens,
      ...(request.topP !== undefined ? { top_p: request.topP } : {}),
      ...(request.seed !== undefined ? { seed: request.seed } : {}),
      ...(request.stop !== undefined ? { stop: request.stop } : {}),
      ...(request.presencePenalty !== undefined ? { presence_penalty: request.presencePenalty } : {}),
      ...(request.frequencyPenalty !== undefined ? { frequency_penalty: request.frequencyPenalty } : {}),
      ...(request.responseFormat !== undefined ? { response_format: request.responseFormat } : {}),
    };
    try {
      const result = request.onDelta
        ? await streamCompletion(client, body, request, options.timeoutMs ?? 120_000, options.name)
        : options.fetch
          ? await plainCompletion(client, body, request)
          : await postedCompletion(post, body, request);
      if (result.finishReason === 'content_filter') {
        throw new ContentFilterError(`${options.name}: the answer was stopped by the content filter`, {
          code: 'content_filter',
        });
      }
      return result;
    } catch (error) {
      if (isAbort(error, request.signal)) throw request.signal?.reason ?? error;
      throw toProviderError(error, options.name);
    }
  }

  return { provider: options.name, complete };
}

type CompletionBody = Pick<
  OpenAI.Chat.ChatCompletionCreateParamsNonStreaming,
  | 'model'
  | 'messages'
  | 'temperature'
  | 'max_tokens'
  | 'top_p'
  | 'seed'
  | 'stop'
  | 'presence_penalty'
  | 'frequency_penalty'
  | 'response_format'
>;

async function plainCompletion(
  client: OpenAI,
  body: CompletionBody,
  request: ChatRequest,
): Promise<ChatResult> {
  const completion = await client.chat.completions.create(
    { ...body, stream: false },
    { signal: request.signal ?? null },
  );
  return completionResult(completion);
}

/** What a plain completion answered, however it was posted. */
function completionResult(completion: OpenAI.Chat.ChatCompletion): ChatResult {
  const choice = completion.choices[0];
  return {
    output: choice?.message.content ?? '',
    usage: {
      promptTokens: completion.usage?.prompt_tokens ?? 0,
      completionTokens: completion.usage?.completion_tokens ?? 0,
    },
    finishReason: choice?.finish_reason ?? null,
  };
}

/** Where and how {@link postedCompletion} posts. */
interface PlainPost {
  url: URL;
  headers: Record<string, string>;
  timeoutMs: number;
  name: string;
}

/** The body of an OpenAI-style error answer, as far as it is read. */
interface ErrorAnswer {
  error?: { message?: unknown; code?: unknown } | null;
}

/**
 * A plain completion posted over node:http(s) (json-post.ts), answered and
 * failed exactly as {@link plainCompletion} through the SDK: the same fields
 * read, an error status mapped from the same message, code and headers.
 */
async function postedCompletion(
  post: PlainPost,
  body: CompletionBody,
  request: ChatRequest,
): Promise<ChatResult> {
  const response = await postJson(post.url, JSON.stringify({ ...body, stream: false }), {
    headers: post.headers,
    timeoutMs: post.timeoutMs,
    signal: request.signal,
  });
  const json = parseJson(response.text);
  if (response.status < 200 || response.status > 299) {
    // The SDK's message for the same answer (APIError.makeMessage), so errors read the same either way.
    const error = (json as ErrorAnswer | undefined)?.error ?? undefined;
    const detail =
      typeof error?.message === 'string'
        ? error.message
        : `${response.status} ${
            error?.message
              ? JSON.stringify(error.message)
              : error
                ? JSON.stringify(error)
                : (json ? undefined : response.text) || 'status code (no body)'
          }`;
    throw errorFromStatus(response.status, `${post.name}: ${detail}`, {
      code: typeof error?.code === 'string' ? error.code : null,
      retryAfterMs: retryAfterMsFromHeaders(response.headers),
    });
  }
  // Read as the SDK path reads it: an answer that is not a completion fails as an unexpected error.
  if (json === undefined) throw new SyntaxError(`${post.name}: the answer is not JSON`);
  return completionResult(json as OpenAI.Chat.ChatCompletion);
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

async function streamCompletion(
  client: OpenAI,
  body: CompletionBody,
  request: ChatRequest,
  idleTimeoutMs: number,
  name: string,
): Promise<ChatResult> {
  // The SDK's timeout ends with the response headers; a stream that stalls
  // midway is cut when no chunk has arrived for a whole timeout.
  const idle = new AbortController();
  const signal = request.signal ? AbortSignal.any([request.signal, idle.signal]) : idle.signal;
  let timer = setTimeout(() => idle.abort(), idleTimeoutMs);
  try {
    const stream = await client.chat.completions.create(
      { ...body, stream: true, stream_options: { include_usage: true } },
      { signal },
    );
    let output = '';
    let finishReason: string | null = null;
    let usage = { promptTokens: 0, completionTokens: 0 };
    for await (const chunk of stream) {
      clearTimeout(timer);
      timer = setTimeout(() => idle.abort(), idleTimeoutMs);
      const choice = chunk.choices[0];
      const delta = choice?.delta?.content;
      if (delta) {
        output += delta;
        request.onDelta?.(delta);
      }
      if (choice?.finish_reason) finishReason = choice.finish_reason;
      if (chunk.usage) {
        usage = { promptTokens: chunk.usage.prompt_tokens, completionTokens: chunk.usage.completion_tokens };
      }
    }
    // The SDK ends a stream quietly when its signal aborts; a cut-off answer must not pass for a complete one.
    request.signal?.throwIfAborted();
    if (idle.signal.aborted)
      throw new ProviderTimeoutError(`${name}: the stream stalled for ${idleTimeoutMs} ms`);
    return { output, usage, finishReason };
  } catch (error) {
    if (idle.signal.aborted && !request.signal?.aborted) {
      throw new ProviderTimeoutError(`${name}: the stream stalled for ${idleTimeoutMs} ms`, { cause: error });
    }
    throw error;
  } finally {
    clearTimeout(timer);
  }
}
