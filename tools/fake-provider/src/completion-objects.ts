import { randomBytes } from 'node:crypto';
import type { Answer } from './deterministic-answer.js';

/** The `usage` object of a completion. */
export interface CompletionUsage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

/** The identity shared by a completion and all chunks of one stream. */
export interface CompletionIdentity {
  id: string;
  created: number;
  model: string;
}

/** A fresh `chatcmpl-…` id and creation time (seconds, as OpenAI sends it). */
export function newCompletionIdentity(model: string): CompletionIdentity {
  return {
    id: `chatcmpl-${randomBytes(12).toString('hex')}`,
    created: Math.floor(Date.now() / 1000),
    model,
  };
}

/** Usage for an answer to a prompt of `promptTokens`. */
export function usageFor(promptTokens: number, answer: Answer): CompletionUsage {
  return {
    prompt_tokens: promptTokens,
    completion_tokens: answer.completionTokens,
    total_tokens: promptTokens + answer.completionTokens,
  };
}

/** A non-streamed `chat.completion` object. */
export function chatCompletion(identity: CompletionIdentity, answer: Answer, usage: CompletionUsage): object {
  return {
    id: identity.id,
    object: 'chat.completion',
    created: identity.created,
    model: identity.model,
    choices: [
      {
        index: 0,
        message: { role: 'assistant', content: answer.content, refusal: null },
        finish_reason: answer.finishReason,
        logprobs: null,
      },
    ],
    usage,
  };
}

/**
 * A `chat.completion.chunk`. With `include_usage`, OpenAI sends `usage: null`
 * on every chunk but the last, so the fake does too.
 */
export function chatCompletionChunk(
  identity: CompletionIdentity,
  choice: { delta: Record<string, string>; finishReason: Answer['finishReason'] | null } | undefined,
  usage: CompletionUsage | null | undefined,
): object {
  return {
    id: identity.id,
    object: 'chat.completion.chunk',
    created: identity.created,
    model: identity.model,
    choices: choice
      ? [{ index: 0, delta: choice.delta, finish_reason: choice.finishReason, logprobs: null }]
      : [],
    ...(usage === undefined ? {} : { usage }),
  };
}

/**
 * Splits content into one delta per word, each word keeping the whitespace
 * after it (leading whitespace goes with the first), so the deltas joined
 * are exactly the content.
 */
export function splitIntoDeltas(content: string): string[] {
  const deltas = content.match(/\s*\S+\s*/g) ?? [];
  // Only whitespace: no words, but the text must still arrive intact.
  return deltas.length === 0 && content.length > 0 ? [content] : deltas;
}
