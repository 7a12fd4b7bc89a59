import { decode, encode } from 'gpt-tokenizer/encoding/o200k_base';
import type { ChatMessage } from './types.js';

/**
 * The one place that measures prompts. It uses `gpt-tokenizer` (pure
 * JavaScript, no native build) with OpenAI's `o200k_base` encoding (GPT-4o
 * and later). Other models (Llama, Qwen, Mistral, DeepSeek…) have tokenizers
 * of their own (Llama 3 and DeepSeek about 128k entries, Qwen 2.5 about
 * 152k, against `o200k_base`'s 200k; a smaller vocabulary tends to count
 * more tokens for the same text), so a budget keeps
 * {@link CONTEXT_SAFETY_MARGIN} of every window in reserve instead of
 * loading each model's vocabulary.
 */
export const TOKENIZER_ENCODING = 'o200k_base';

/**
 * Tokens counted per message on top of its content: the role and the chat
 * template's delimiters. OpenAI's chat format spends 3 (`<|im_start|>`, the
 * role, `<|im_sep|>`); 4 covers the longer templates of Llama and Qwen.
 */
export const TOKENS_PER_MESSAGE = 4;

/** Tokens counted once per prompt: the template's priming of the assistant's reply. */
export const TOKENS_PER_PROMPT = 3;

/**
 * The share of a model's context window left unused, for tokenizers that
 * count more tokens than `o200k_base` does: a window of 32,768 tokens is
 * budgeted as 29,491. The difference was not measured here (no other
 * model's vocabulary ships with a package we use); a provider that counts
 * more than the margin allows answers a context-length 400, and an
 * aggregator is then retried once with its references halved.
 */
export const CONTEXT_SAFETY_MARGIN = 0.1;

// Special-token text (`<|endoftext|>`) in a message is plain text to us: counted, never refused.
const AS_PLAIN_TEXT = { disallowedSpecial: new Set<string>() };

/** The tokens of a text, special-token text counted as plain text. */
export function tokenize(text: string): number[] {
  return encode(text, AS_PLAIN_TEXT);
}

/** How many tokens a text is, by {@link TOKENIZER_ENCODING}. */
export function countTextTokens(text: string): number {
  return text === '' ? 0 : tokenize(text).length;
}

/**
 * The first `count` tokens of a text, as text. A cut that falls inside a
 * character made of several tokens drops that character's broken tail.
 */
export function textOfFirstTokens(tokens: readonly number[], count: number): string {
  return decode(tokens.slice(0, Math.max(0, count))).replace(/\uFFFD+$/u, '');
}

/**
 * Counts of texts already measured, by text: shared by the measures of one
 * plan, whose prompts repeat the request's messages (a message of a million
 * characters is then tokenized once, not once per agent and per try). Keep
 * one for a plan only: it holds its texts.
 */
export type TokenCountMemo = Map<string, number>;

/**
 * The tokens a chat prompt takes: each message's content, plus
 * {@link TOKENS_PER_MESSAGE} per message and {@link TOKENS_PER_PROMPT} once.
 * An estimate for models whose tokenizer differs: budgets apply
 * {@link CONTEXT_SAFETY_MARGIN} on top.
 */
export function countPromptTokens(messages: readonly ChatMessage[], memo?: TokenCountMemo): number {
  let total = TOKENS_PER_PROMPT;
  for (const { content } of messages) {
    let count = memo?.get(content);
    if (count === undefined) {
      count = countTextTokens(content);
      memo?.set(content, count);
    }
    total += TOKENS_PER_MESSAGE + count;
  }
  return total;
}

/**
 * The tokens of a model's window a prompt and its `max_tokens` may use: the
 * window less {@link CONTEXT_SAFETY_MARGIN}, rounded down.
 */
export function usableContextTokens(contextWindow: number): number {
  return Math.floor(contextWindow * (1 - CONTEXT_SAFETY_MARGIN));
}
