import type { IncomingMessage, ServerResponse } from 'node:http';
import { abortableDelay } from './abortable-delay.js';
import {
  InvalidRequestError,
  parseChatCompletionRequest,
  type ChatCompletionRequest,
} from './chat-request.js';
import {
  chatCompletion,
  chatCompletionChunk,
  newCompletionIdentity,
  splitIntoDeltas,
  usageFor,
  type CompletionIdentity,
  type CompletionUsage,
} from './completion-objects.js';
import { contextLengthErrorBody, countWindowTokens } from './context-window.js';
import { countPromptTokens, fixedAnswer, generateAnswer, type Answer } from './deterministic-answer.js';
import { HttpError, readJsonBody, sendError, sendJson, writeEvent } from './http-io.js';
import { jsonAnswerContent } from './structured-answer.js';
import type { RecordedRequest } from './recorded-request.js';
import { resolveResponsePlan } from './response-plan.js';
import type { ScriptBook } from './script-book.js';

/** Status recorded for a request whose client went away before the response ended (nginx's convention). */
export const CLIENT_CLOSED_REQUEST = 499;

/** What the chat completions endpoint needs from the provider that owns it. */
export interface ChatCompletionContext {
  book: ScriptBook;
  requests: RecordedRequest[];
  outputWords: number;
  tokenIntervalMs: number;
  /** The context window enforced on a model, in tokens; undefined when none is. */
  contextWindowOf(model: string): number | undefined;
  /** Per-model latency, else the default. */
  latencyFor(model: string): number;
  /** Whether the `Authorization` header carries the required key (always true without one). */
  isAuthorized(authorization: string | undefined): boolean;
  /** Holds a request until released (true) or until `signal` aborts (false). */
  hold(model: string, signal: AbortSignal): Promise<boolean>;
}

function recordOf(request: ChatCompletionRequest, authorization: string | undefined, receivedAt: number) {
  const record: RecordedRequest = {
    model: request.model,
    messages: request.messages,
    stream: request.stream,
    receivedAt,
  };
  if (request.temperature !== undefined) record.temperature = request.temperature;
  if (request.maxTokens !== undefined) record.maxTokens = request.maxTokens;
  if (request.topP !== undefined) record.topP = request.topP;
  if (request.seed !== undefined) record.seed = request.seed;
  if (request.stop !== undefined) record.stop = request.stop;
  if (request.presencePenalty !== undefined) record.presencePenalty = request.presencePenalty;
  if (request.frequencyPenalty !== undefined) record.frequencyPenalty = request.frequencyPenalty;
  if (request.rawResponseFormat !== undefined) record.responseFormat = request.rawResponseFormat;
  if (authorization !== undefined) record.authorization = authorization;
  return record;
}

/**
 * The answer to a request: a scripted `content` as it is, else the
 * deterministic text, as JSON when `response_format` asks for it (a minimal
 * instance of a `json_schema`). Either way cut to `max_tokens` words, with
 * `finish_reason: length` when cut, as a real model's answer is.
 */
function answerTo(request: ChatCompletionRequest, content: string | undefined, outputWords: number): Answer {
  if (content !== undefined) return fixedAnswer(content, request.maxTokens);
  if (request.responseFormat === undefined) {
    return generateAnswer(request.model, request.messages, { outputWords, maxTokens: request.maxTokens });
  }
  const text = generateAnswer(request.model, request.messages, { outputWords }).content;
  return fixedAnswer(jsonAnswerContent(request.responseFormat, text), request.maxTokens);
}

/**
 * Streams an answer as `chat.completion.chunk` events: a role chunk, one
 * chunk per word (`tokenIntervalMs` before each), a chunk with the finish
 * reason, the usage chunk when asked for, then `[DONE]`. Stops quietly when
 * the client goes away.
 */
async function streamAnswer(
  response: ServerResponse,
  signal: AbortSignal,
  identity: CompletionIdentity,
  answer: Answer,
  usage: CompletionUsage,
  options: { includeUsage: boolean; tokenIntervalMs: number },
): Promise<void> {
  // With include_usage, OpenAI puts `usage: null` on every chunk but the usage one.
  const chunkUsage = options.includeUsage ? null : undefined;
  const send = (chunk: object) => writeEvent(response, JSON.stringify(chunk), signal);
  response.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache',
    connection: 'keep-alive',
  });
  if (
    !(await send(
      chatCompletionChunk(
        identity,
        { delta: { role: 'assistant', content: '' }, finishReason: null },
        chunkUsage,
      ),
    ))
  ) {
    return;
  }
  for (const delta of splitIntoDeltas(answer.content)) {
    if (!(await abortableDelay(options.tokenIntervalMs, signal))) return;
    if (
      !(await send(
        chatCompletionChunk(identity, { delta: { content: delta }, finishReason: null }, chunkUsage),
      ))
    ) {
      return;
    }
  }
  if (
    !(await send(chatCompletionChunk(identity, { delta: {}, finishReason: answer.finishReason }, chunkUsage)))
  ) {
    return;
  }
  if (options.includeUsage && !(await send(chatCompletionChunk(identity, undefined, usage)))) return;
  response.end('data: [DONE]\n\n');
}

/**
 * Serves `POST /v1/chat/completions`: records the request, applies the
 * model's script or behaviour (error, hang, hold, latency, fixed content), then
 * answers with a deterministic completion, streamed or not.
 *
 * The body is validated before the API key (OpenAI checks the key first) so
 * that a request rejected with 401 still shows up in `requests` for tests.
 */
export async function handleChatCompletion(
  context: ChatCompletionContext,
  request: IncomingMessage,
  response: ServerResponse,
): Promise<void> {
  const receivedAt = Date.now();
  // Aborts every wait of this request as soon as the socket closes, whatever the cause:
  // the client gave up, or close() destroyed it.
  const controller = new AbortController();
  response.once('close', () => controller.abort());

  const body = await readJsonBody(request);
  let parsed: ChatCompletionRequest;
  try {
    parsed = parseChatCompletionRequest(body);
  } catch (error) {
    if (error instanceof InvalidRequestError) throw new HttpError(400, error.message);
    throw error;
  }
  const authorization = request.headers.authorization;
  const record = recordOf(parsed, authorization, receivedAt);
  context.requests.push(record);
  const settle = () => {
    record.status = response.writableFinished ? response.statusCode : CLIENT_CLOSED_REQUEST;
    record.finishedAt = Date.now();
  };
  if (controller.signal.aborted) {
    settle(); // the client left while we read the body; don't let it consume a scripted action
    return;
  }
  response.once('close', settle);
  if (!context.isAuthorized(authorization)) {
    sendError(response, 401);
    return;
  }

  // A prompt too long for the model's window is refused before anything is generated or scripted.
  const contextWindow = context.contextWindowOf(parsed.model);
  if (contextWindow !== undefined) {
    const promptTokens = countWindowTokens(parsed.messages);
    const maxTokens = parsed.maxTokens ?? 0;
    if (promptTokens + maxTokens > contextWindow) {
      sendJson(response, 400, contextLengthErrorBody(contextWindow, promptTokens, maxTokens));
      return;
    }
  }

  const { action, behaviour } = context.book.take(parsed.model);
  const plan = resolveResponsePlan(action, behaviour, context.latencyFor(parsed.model));
  // A hang keeps the response open; the 'close' listener records 499 when the client or close() ends it.
  if (plan.kind === 'hang') return;
  // A held answer waits for release() first; its latency counts from the release.
  if (plan.kind === 'answer' && plan.hold && !(await context.hold(parsed.model, controller.signal))) return;
  if (!(await abortableDelay(plan.latencyMs, controller.signal))) return;
  if (plan.kind === 'fail') {
    sendError(response, plan.status, plan.message, plan.headers);
    return;
  }

  const answer = answerTo(parsed, plan.content, context.outputWords);
  const usage = usageFor(countPromptTokens(parsed.messages), answer);
  const identity = newCompletionIdentity(parsed.model);
  if (!parsed.stream) {
    sendJson(response, 200, chatCompletion(identity, answer, usage));
    return;
  }
  await streamAnswer(response, controller.signal, identity, answer, usage, {
    includeUsage: parsed.includeUsage,
    tokenIntervalMs: context.tokenIntervalMs,
  });
}
