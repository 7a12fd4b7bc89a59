import {
  CONTEXT_SAFETY_MARGIN,
  countPromptTokens,
  countTextTokens,
  TOKENIZER_ENCODING,
  textOfFirstTokens,
  tokenize,
  type TokenCountMemo,
  usableContextTokens,
} from './count-tokens.js';
import { buildAgentMessages, type BuildAgentMessagesOptions } from './references.js';
import type { ChatMessage } from './types.js';

/**
 * The lowest `max_tokens` a call is sent with to make its prompt fit: 256,
 * or the agent's own `maxTokens` when that is lower. Below it an answer is
 * too short to be worth paying for, so the call fails instead.
 */
export const MAX_TOKENS_FLOOR = 256;

/**
 * At most this many rounds of measuring the built prompt and cutting the
 * references by what is still over: the cut notes and the escaping of the
 * tagged format make the built prompt a little longer than the sum of its
 * parts, and each round removes that excess.
 */
const MAX_FIT_ROUNDS = 8;

/**
 * Tokens kept in reserve per cut reference beyond its note: the text around
 * a cut tokenizes a little differently from the whole (the kept text's last
 * token, the blank line before the note).
 */
const CUT_SLACK_TOKENS = 4;

/** One reference shortened to fit: its position among the call's references and its size before and after. */
export interface ReferenceCut {
  /** 0-based position among the references the call was given. */
  index: number;
  /** Tokens of the reference as the previous layer answered it. */
  originalTokens: number;
  /** Tokens of it that were kept (before the note that says it was cut). */
  keptTokens: number;
}

/** Inputs of {@link fitToContext}: what {@link buildAgentMessages} takes, plus the budget. */
export interface FitToContextOptions extends BuildAgentMessagesOptions {
  /** The model's context window in tokens; undefined when unknown (the prompt is then sent as built). */
  contextWindow: number | undefined;
  /**
   * The share (0..1] of the references' budget to use: 0.5 halves the
   * references (or what fitting left of them), for a call retried after the
   * provider said the prompt did not fit.
   * @defaultValue 1
   */
  referenceShare?: number;
  /** The model id, for the error message. @defaultValue the agent's model */
  model?: string;
  /** Counts shared with the other calls of the same plan (see {@link TokenCountMemo}). */
  memo?: TokenCountMemo;
}

/** A prompt that fits (possibly after cuts): what to send. */
export interface FittedPrompt {
  outcome: 'fits';
  messages: ChatMessage[];
  /** The `max_tokens` to send: the agent's, or lower when the prompt needed the room. */
  maxTokens: number;
  /** The references shortened, in reference order; empty when none was. */
  referencesCut: ReferenceCut[];
  /** The prompt's size by {@link countPromptTokens}; null when it was not measured (no window). */
  promptTokens: number | null;
}

/** A prompt that cannot fit even with every reference cut and `max_tokens` at its floor: not to be sent. */
export interface ExceededPrompt {
  outcome: 'context_length_exceeded';
  /** The smallest prompt that could be built, by {@link countPromptTokens}. */
  promptTokens: number;
  message: string;
}

/** The outcome of {@link fitToContext}. */
export type ContextFitOutcome = FittedPrompt | ExceededPrompt;

/** The visible note that ends a reference shortened to fit the context window. */
export function cutReferenceNote(keptTokens: number, originalTokens: number): string {
  return `[… cut to fit the context window: ${keptTokens} of ${originalTokens} tokens kept]`;
}

/**
 * Water-filling: the largest common cap such that the lengths, each lowered
 * to the cap, add up to at most `budget`. Only lengths above the cap are cut
 * (the longest first), and all of those are cut to the same size.
 * @returns Infinity when nothing needs to be cut.
 */
export function waterFillCap(lengths: readonly number[], budget: number): number {
  const total = lengths.reduce((sum, length) => sum + length, 0);
  if (total <= budget) return Number.POSITIVE_INFINITY;
  let low = 0; // fits
  let high = Math.max(...lengths); // does not fit
  while (high - low > 1) {
    const middle = Math.floor((low + high) / 2);
    const used = lengths.reduce((sum, length) => sum + Math.min(length, middle), 0);
    if (used <= budget) low = middle;
    else high = middle;
  }
  return low;
}

/**
 * Fits one call's prompt and `max_tokens` into its model's context window
 * (less {@link CONTEXT_SAFETY_MARGIN}), by these rules in this order:
 *
 * 1. A prompt that fits with the agent's `maxTokens` is sent as built
 *    (unless `referenceShare` is below 1).
 * 2. The references are shortened by water-filling: the longest are cut to a
 *    common cap, the largest cap whose total fits the room the rest of the
 *    prompt and `maxTokens` leave (times `referenceShare`), so a reference
 *    shorter than the cap is kept whole. Each cut one keeps its first tokens
 *    and ends with {@link cutReferenceNote}. Order and count are unchanged.
 * 3. When even references cut to nothing leave no room for `maxTokens`, it is
 *    lowered to what is left, down to {@link MAX_TOKENS_FLOOR} (or the
 *    agent's `maxTokens` if lower).
 * 4. Below that floor the outcome is `context_length_exceeded`: the call is
 *    not to be sent.
 *
 * Pure and deterministic: the same inputs give the same prompt.
 */
export function fitToContext(options: FitToContextOptions): ContextFitOutcome {
  const { contextWindow, references } = options;
  const share = options.referenceShare ?? 1;
  if (!(share > 0 && share <= 1)) throw new RangeError(`referenceShare must be in (0, 1], got ${share}`);
  const wanted = options.agent.maxTokens;
  const usable = contextWindow === undefined ? Number.POSITIVE_INFINITY : usableContextTokens(contextWindow);
  const build = (texts: readonly string[]) => buildAgentMessages({ ...options, references: texts });
  const memo = options.memo ?? new Map<string, number>();
  const count = (built: readonly ChatMessage[]) => countPromptTokens(built, memo);

  let messages = build(references);
  const referencesCut: ReferenceCut[] = [];
  // Nothing to fit into: not even measured.
  if (share === 1 && contextWindow === undefined) {
    return { outcome: 'fits', messages, maxTokens: wanted, referencesCut, promptTokens: null };
  }
  let promptTokens = count(messages);
  if (share === 1 && promptTokens + wanted <= usable) {
    return { outcome: 'fits', messages, maxTokens: wanted, referencesCut, promptTokens };
  }

  if (references.length > 0) {
    const tokens = references.map(tokenize);
    const lengths = tokens.map((list) => list.length);
    const total = lengths.reduce((sum, length) => sum + length, 0);
    const frame = count(build(references.map(() => '')));
    // Room for the notes of the references that may be cut, and a few tokens each for the
    // merges a cut makes at its ends, so that the first round usually fits.
    const longest = Math.max(...lengths);
    const slack = countTextTokens(`\n\n${cutReferenceNote(longest, longest)}`) + CUT_SLACK_TOKENS;
    const notes = references.length * slack;
    const room = Math.min(total, usable - wanted - frame - (total > usable - wanted - frame ? notes : 0));
    let budget = Math.floor(Math.max(0, room) * share);
    for (let round = 0; round < MAX_FIT_ROUNDS; round += 1) {
      const cap = waterFillCap(lengths, budget);
      referencesCut.length = 0;
      const texts = references.map((reference, index) => {
        const length = lengths[index] as number;
        if (length <= cap) return reference;
        referencesCut.push({ index, originalTokens: length, keptTokens: cap });
        const kept = textOfFirstTokens(tokens[index] as number[], cap);
        return `${kept}${kept === '' ? '' : '\n\n'}${cutReferenceNote(cap, length)}`;
      });
      messages = build(texts);
      promptTokens = count(messages);
      const excess = promptTokens + wanted - usable;
      if (excess <= 0 || budget === 0) break;
      // The last round cuts every reference to nothing, whatever the excess.
      budget =
        round === MAX_FIT_ROUNDS - 2
          ? 0
          : Math.max(0, budget - excess - references.length * CUT_SLACK_TOKENS);
    }
  }

  if (promptTokens + wanted <= usable) {
    return { outcome: 'fits', messages, maxTokens: wanted, referencesCut, promptTokens };
  }
  const floor = Math.min(MAX_TOKENS_FLOOR, wanted);
  const room = usable - promptTokens;
  if (room >= floor) return { outcome: 'fits', messages, maxTokens: room, referencesCut, promptTokens };
  return {
    outcome: 'context_length_exceeded',
    promptTokens,
    message:
      `the prompt for ${options.model ?? options.agent.model} is ${promptTokens} tokens ` +
      `(${TOKENIZER_ENCODING}${references.length > 0 ? ', every reference cut' : ''}) ` +
      `and max_tokens is at least ${floor}: more than the ${usable} tokens usable of its ` +
      `${contextWindow ?? 'unknown'}-token context window (${CONTEXT_SAFETY_MARGIN * 100}% is kept ` +
      `for tokenizers that count more); the call was not sent`,
  };
}
