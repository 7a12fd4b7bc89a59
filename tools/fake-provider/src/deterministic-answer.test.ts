import { describe, expect, it } from 'vitest';
import { splitIntoDeltas } from './completion-objects.js';
import { countPromptTokens, countWords, fixedAnswer, generateAnswer } from './deterministic-answer.js';

const messages = [{ role: 'user', content: 'Hi' }];

describe('generateAnswer', () => {
  it('produces outputWords words, of which the prefix counts three', () => {
    const answer = generateAnswer('m', messages, { outputWords: 40 });
    expect(answer.content).toMatch(/^m answer [0-9a-f]{8}: [a-z]+( [a-z]+){36}$/);
    expect(answer).toMatchObject({ completionTokens: 40, finishReason: 'stop' });
  });

  it('supports answers longer than one hash worth of words', () => {
    const answer = generateAnswer('m', messages, { outputWords: 500 });
    expect(countWords(answer.content)).toBe(500);
    expect(generateAnswer('m', messages, { outputWords: 500 }).content).toBe(answer.content);
  });

  it('cuts to maxTokens, even inside the prefix', () => {
    expect(generateAnswer('m', messages, { outputWords: 40, maxTokens: 2 })).toEqual({
      content: 'm answer',
      completionTokens: 2,
      finishReason: 'length',
    });
    expect(generateAnswer('m', messages, { outputWords: 5, maxTokens: 5 }).finishReason).toBe('stop');
  });
});

describe('token counts', () => {
  it('counts prompt tokens as ceil(chars / 4) + 4 per message', () => {
    expect(countPromptTokens([{ role: 'user', content: 'abcde' }])).toBe(2 + 4);
    expect(countPromptTokens([])).toBe(0);
  });

  it('counts a fixed answer by its words', () => {
    expect(fixedAnswer(' two\n words ')).toEqual({
      content: ' two\n words ',
      completionTokens: 2,
      finishReason: 'stop',
    });
  });
});

describe('splitIntoDeltas', () => {
  it('gives one delta per word that join back to the exact text', () => {
    expect(splitIntoDeltas('a b c')).toEqual(['a ', 'b ', 'c']);
    expect(splitIntoDeltas('  a\n\nb ')).toEqual(['  a\n\n', 'b ']);
    expect(splitIntoDeltas('   ')).toEqual(['   ']);
    expect(splitIntoDeltas('')).toEqual([]);
  });
});
