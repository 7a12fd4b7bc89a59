import { createHash } from 'node:crypto';
import type { RecordedMessage } from './recorded-request.js';

/** The text of a completion and how it is accounted for. */
export interface Answer {
  content: string;
  /** One word is one completion token. */
  completionTokens: number;
  /** `'length'` when `max_tokens` cut the answer short. */
  finishReason: 'stop' | 'length';
}

/** Options for {@link generateAnswer}. */
export interface GenerateAnswerOptions {
  /** Words in an uncapped answer, including the `<model> answer <hash>:` prefix. */
  outputWords: number;
  /** The request's token cap; the answer is cut to this many words. */
  maxTokens?: number;
}

// 64 words, so one hash byte picks one word without bias (256 % 64 === 0).
const LOREM = [
  'lorem', 'ipsum', 'dolor', 'sit', 'amet', 'consectetur', 'adipiscing', 'elit',
  'sed', 'do', 'eiusmod', 'tempor', 'incididunt', 'ut', 'labore', 'et',
  'dolore', 'magna', 'aliqua', 'enim', 'ad', 'minim', 'veniam', 'quis',
  'nostrud', 'exercitation', 'ullamco', 'laboris', 'nisi', 'aliquip', 'ex', 'ea',
  'commodo', 'consequat', 'duis', 'aute', 'irure', 'in', 'reprehenderit', 'voluptate',
  'velit', 'esse', 'cillum', 'fugiat', 'nulla', 'pariatur', 'excepteur', 'sint',
  'occaecat', 'cupidatat', 'non', 'proident', 'sunt', 'culpa', 'qui', 'officia',
  'deserunt', 'mollit', 'anim', 'id', 'est', 'laborum', 'vitae', 'purus',
] as const; // prettier-ignore

/** Counts whitespace-separated words: the fake's notion of tokens. */
export function countWords(text: string): number {
  return text.match(/\S+/g)?.length ?? 0;
}

/**
 * Prompt tokens as the fake reports them: a quarter of the characters of all
 * message contents, rounded up, plus 4 per message for the chat framing.
 * Crude, but deterministic, which is what usage-accounting tests need.
 */
export function countPromptTokens(messages: readonly RecordedMessage[]): number {
  const characters = messages.reduce((total, message) => total + message.content.length, 0);
  return Math.ceil(characters / 4) + 4 * messages.length;
}

/** Yields hash bytes forever: the seed digest, then sha256(seed ‖ counter) blocks, so any length is reproducible. */
function* hashBytes(seed: Buffer): Generator<number> {
  yield* seed;
  for (let counter = 1; ; counter += 1) {
    yield* createHash('sha256').update(seed).update(String(counter)).digest();
  }
}

/**
 * The deterministic answer to `messages` from `model`:
 * `"<model> answer <8 hex>: "` followed by lorem words, `outputWords` words in
 * all, cut to `maxTokens`. The hex and the words come from
 * sha256(model + JSON of messages), so identical requests get identical text
 * and different ones (almost surely) different text.
 */
export function generateAnswer(
  model: string,
  messages: readonly RecordedMessage[],
  options: GenerateAnswerOptions,
): Answer {
  const seed = createHash('sha256')
    .update(model + JSON.stringify(messages))
    .digest();
  const prefix = [...model.trim().split(/\s+/), 'answer', `${seed.toString('hex').slice(0, 8)}:`];
  const wanted =
    options.maxTokens === undefined ? options.outputWords : Math.min(options.outputWords, options.maxTokens);
  const words = prefix.slice(0, wanted);
  // Words are drawn from bytes after the 4 shown in the prefix, so the text doesn't echo the hex.
  const bytes = hashBytes(seed.subarray(4));
  while (words.length < wanted) words.push(LOREM[(bytes.next().value as number) % LOREM.length] as string);
  return {
    content: words.join(' '),
    completionTokens: words.length,
    finishReason: wanted < options.outputWords ? 'length' : 'stop',
  };
}

/**
 * An answer with fixed text (a scripted `content`, a JSON answer): cut after
 * its `maxTokens`-th word when it has more (`'length'`), else whole (`'stop'`).
 */
export function fixedAnswer(content: string, maxTokens?: number): Answer {
  const words = countWords(content);
  if (maxTokens === undefined || words <= maxTokens) {
    return { content, completionTokens: words, finishReason: 'stop' };
  }
  // The text up to the end of the maxTokens-th word, its spacing kept.
  const cut = content.match(new RegExp(`^(?:\\s*\\S+){${maxTokens}}`))?.[0] ?? '';
  return { content: cut, completionTokens: maxTokens, finishReason: 'length' };
}
