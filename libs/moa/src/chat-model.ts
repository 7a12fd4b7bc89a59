import type { AggregatorOptions } from './aggregator-options.js';
import type { ChatMessage, Usage } from './types.js';

/** One chat completion request to a provider, in provider terms. */
export interface ChatRequest extends Omit<AggregatorOptions, 'temperature'> {
  /** The model id as the provider knows it (the part after `<provider>/`). */
  model: string;
  messages: ChatMessage[];
  temperature: number;
  maxTokens: number;
  // The other sampling options (a request's, for its aggregator call) are sent only when set.
  signal?: AbortSignal;
  /** When set, the call streams and this receives each text delta as it arrives. */
  onDelta?: (text: string) => void;
}

/** What a provider answered. */
export interface ChatResult {
  output: string;
  usage: Usage;
  finishReason: string | null;
}

/**
 * A provider adapter: makes one chat completion call and throws a
 * `ProviderError` subclass when it fails. No retries at this level; the
 * runner (in process) or the queue (distributed) decides about those.
 */
export interface ChatModel {
  readonly provider: string;
  complete(request: ChatRequest): Promise<ChatResult>;
}
