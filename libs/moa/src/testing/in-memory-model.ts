import type { ChatModel, ChatRequest, ChatResult } from '../chat-model.js';

/** What the in-memory model answers: text, a full result, or an error to throw. */
export type InMemoryResponse = string | ChatResult | Error;

/** Options of {@link createInMemoryModel}. */
export interface InMemoryModelOptions {
  /** @defaultValue 'memory' */
  provider?: string;
  /**
   * Decides each answer from the request.
   * @defaultValue an echo naming the model and the number of messages
   */
  respond?: (request: ChatRequest, callNumber: number) => InMemoryResponse | Promise<InMemoryResponse>;
  /** Milliseconds before answering (aborts honour the request's signal). @defaultValue 0 */
  latencyMs?: number | ((request: ChatRequest) => number);
}

/** A {@link ChatModel} that keeps every request it was given, for tests of the code above the adapters. */
export interface InMemoryModel extends ChatModel {
  readonly calls: ChatRequest[];
}

/** Counts whitespace-separated words: the in-memory model's notion of a token. */
function countWords(text: string): number {
  return text.split(/\s+/).filter(Boolean).length;
}

/** Creates an in-memory chat model that records its calls and answers as told. */
export function createInMemoryModel(options: InMemoryModelOptions = {}): InMemoryModel {
  const calls: ChatRequest[] = [];
  return {
    provider: options.provider ?? 'memory',
    calls,
    async complete(request) {
      calls.push(request);
      const latency =
        typeof options.latencyMs === 'function' ? options.latencyMs(request) : (options.latencyMs ?? 0);
      if (latency > 0) {
        await new Promise<void>((resolve, reject) => {
          const timer = setTimeout(resolve, latency);
          request.signal?.addEventListener(
            'abort',
            () => {
              clearTimeout(timer);
              reject(request.signal?.reason);
            },
            { once: true },
          );
        });
      }
      if (request.signal?.aborted) throw request.signal.reason;
      const answer = options.respond
        ? await options.respond(request, calls.length)
        : `${request.model} answer to ${request.messages.length} messages`;
      if (answer instanceof Error) throw answer;
      const result: ChatResult =
        typeof answer === 'string'
          ? {
              output: answer,
              usage: {
                promptTokens: request.messages.reduce((sum, message) => sum + countWords(message.content), 0),
                completionTokens: countWords(answer),
              },
              finishReason: 'stop',
            }
          : answer;
      if (request.onDelta) for (const word of result.output.split(/(?<= )/)) request.onDelta(word);
      return result;
    },
  };
}
