import { describe, it, expect } from 'vitest';
import {
  countPromptTokens,
  countTextTokens,
  textOfFirstTokens,
  tokenize,
  TOKENS_PER_MESSAGE,
  TOKENS_PER_PROMPT,
  usableContextTokens,
} from './count-tokens.js';

describe('countTextTokens', () => {
  it('counts with o200k_base: known counts of short texts', () => {
    // o200k_base: "hello world" is ["hello", " world"]; "Hello, world!" is ["Hello", ",", " world", "!"].
    expect(countTextTokens('hello world')).toBe(2);
    expect(countTextTokens('Hello, world!')).toBe(4);
    expect(countTextTokens('')).toBe(0);
  });

  it('counts special-token text as plain text instead of refusing it', () => {
    expect(countTextTokens('<|endoftext|>')).toBeGreaterThan(1);
    expect(() => tokenize('a <|im_start|> b')).not.toThrow();
  });

  it('grows with the text: 400 words of prose is a few hundred tokens', () => {
    const words = Array.from({ length: 400 }, (_, index) => `word${index % 37}`).join(' ');
    const count = countTextTokens(words);
    expect(count).toBeGreaterThanOrEqual(400);
    expect(count).toBeLessThan(1600);
  });
});

describe('countPromptTokens', () => {
  it('adds the per-message and per-prompt overheads to the contents', () => {
    const messages = [
      { role: 'system' as const, content: 'hello world' },
      { role: 'user' as const, content: 'Hello, world!' },
    ];
    expect(countPromptTokens(messages)).toBe(2 + 4 + 2 * TOKENS_PER_MESSAGE + TOKENS_PER_PROMPT);
    expect(countPromptTokens([])).toBe(TOKENS_PER_PROMPT);
  });
});

describe('textOfFirstTokens', () => {
  it('keeps the first tokens as text, a prefix of the original', () => {
    const text = 'The quick brown fox jumps over the lazy dog.';
    const tokens = tokenize(text);
    const kept = textOfFirstTokens(tokens, 3);
    expect(text.startsWith(kept)).toBe(true);
    expect(countTextTokens(kept)).toBe(3);
    expect(textOfFirstTokens(tokens, 0)).toBe('');
    expect(textOfFirstTokens(tokens, tokens.length)).toBe(text);
  });

  it('drops a character broken by the cut instead of leaving a replacement character', () => {
    const text = '🙂🙂🙂🙂';
    const tokens = tokenize(text);
    for (let count = 0; count <= tokens.length; count += 1) {
      const kept = textOfFirstTokens(tokens, count);
      expect(kept).not.toContain('\uFFFD');
      expect(text.startsWith(kept)).toBe(true);
    }
  });
});

describe('usableContextTokens', () => {
  it('keeps 10% of the window in reserve for other tokenizers', () => {
    expect(usableContextTokens(32_768)).toBe(29_491);
    expect(usableContextTokens(2000)).toBe(1800);
  });
});
