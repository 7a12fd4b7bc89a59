import { describe, it, expect } from 'vitest';
import { computeCostUsd, sumCosts } from './cost.js';

describe('computeCostUsd', () => {
  it('prices input and output tokens separately per million tokens', () => {
    const cost = computeCostUsd(
      { inputCostPerMTok: 2.5, outputCostPerMTok: 10 },
      { promptTokens: 1_000, completionTokens: 500 },
    );
    // (1000 * 2.5 + 500 * 10) / 1e6
    expect(cost).toBe(0.0075);
  });

  it('returns the unrounded float', () => {
    const cost = computeCostUsd(
      { inputCostPerMTok: 0.88, outputCostPerMTok: 0.88 },
      { promptTokens: 20, completionTokens: 300 },
    );
    expect(cost).toBe((20 * 0.88 + 300 * 0.88) / 1e6);
  });

  it('is 0 for no tokens and for a free model', () => {
    expect(
      computeCostUsd({ inputCostPerMTok: 1, outputCostPerMTok: 1 }, { promptTokens: 0, completionTokens: 0 }),
    ).toBe(0);
    expect(
      computeCostUsd({ inputCostPerMTok: 0, outputCostPerMTok: 0 }, { promptTokens: 9, completionTokens: 9 }),
    ).toBe(0);
  });

  it('is null when the model has no price', () => {
    expect(computeCostUsd(undefined, { promptTokens: 10, completionTokens: 10 })).toBeNull();
  });
});

describe('sumCosts', () => {
  it('adds known costs', () => {
    expect(sumCosts([0.5, 0.25, 0.125])).toBe(0.875);
  });

  it('is 0 for no costs', () => {
    expect(sumCosts([])).toBe(0);
  });

  it('is null when any cost is unknown', () => {
    expect(sumCosts([0.5, null, 0.25])).toBeNull();
    expect(sumCosts([null])).toBeNull();
  });
});
