import type { ModelPricing, Usage } from './types.js';

/**
 * Cost of one call in USD: `(promptTokens * input + completionTokens * output) / 1e6`.
 * Left unrounded because the API reports cost fields as raw floats and sums
 * of rounded values drift.
 *
 * @returns null when the model has no price, so an unknown cost is never reported as 0.
 */
export function computeCostUsd(pricing: ModelPricing | undefined, usage: Usage): number | null {
  if (pricing === undefined) return null;
  return (
    (usage.promptTokens * pricing.inputCostPerMTok + usage.completionTokens * pricing.outputCostPerMTok) / 1e6
  );
}

/**
 * Sum of call costs in USD.
 *
 * @returns null when any cost is unknown (a partial sum would understate the
 * real cost), otherwise the sum; 0 for no costs at all.
 */
export function sumCosts(costs: readonly (number | null)[]): number | null {
  let total = 0;
  for (const cost of costs) {
    if (cost === null) return null;
    total += cost;
  }
  return total;
}
