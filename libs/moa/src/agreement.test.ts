import { describe, expect, it } from 'vitest';
import { agreementOf, jaccard, tokenSet } from './agreement.js';

describe('agreement', () => {
  it('normalizes an answer to its set of lowercase words and numbers', () => {
    expect([...tokenSet('Paris, PARIS! The capital: Paris (France) 42.')]).toEqual([
      'paris',
      'the',
      'capital',
      'france',
      '42',
    ]);
    expect([...tokenSet('Ｐａｒｉｓ café')]).toEqual(['paris', 'café']);
  });

  it('is the Jaccard similarity of token sets for two answers', () => {
    expect(jaccard(tokenSet('a b c'), tokenSet('b c d'))).toBe(0.5);
    expect(agreementOf(['The answer is Paris.', 'the answer is paris'])).toBe(1);
    expect(agreementOf(['red', 'blue'])).toBe(0);
    expect(agreementOf(['', ''])).toBe(1);
  });

  it('is the mean over every pair for more answers', () => {
    // Pairs: (a b, a b) 1, (a b, c) 0, (a b, c) 0.
    expect(agreementOf(['a b', 'a b', 'c'])).toBeCloseTo(1 / 3);
  });

  it('is null for fewer than two answers', () => {
    expect(agreementOf([])).toBeNull();
    expect(agreementOf(['alone'])).toBeNull();
  });
});
