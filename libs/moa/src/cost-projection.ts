import { CONTEXT_SAFETY_MARGIN, countPromptTokens } from './count-tokens.js';
import type { PlannedCall } from './moa-plan.js';
import type { ChatMessage, LayerRecord, ModelPricing } from './types.js';

/*
 * The cost cap's arithmetic. Before a layer starts, its worst case is
 * projected: for every call, its prompt at the model's input price plus its
 * whole `maxTokens` at the output price. Prompt tokens are counted with a
 * margin: see {@link estimatePromptTokens}.
 * A model with no price is projected at 0 (and costs 0 in what was spent):
 * the cap bounds what can be priced, and an unpriced call is reported with
 * `cost_usd: null` and counted in `moa_llm_cost_unknown_total`.
 */

/**
 * A prompt's tokens for the worst case: counted with the tokenizer of the
 * context budgets (`count-tokens.ts`, o200k_base), plus the same
 * {@link CONTEXT_SAFETY_MARGIN} they allow for models whose own tokenizer
 * counts more, rounded up. The one place the cap measures a prompt.
 */
export function estimatePromptTokens(messages: readonly ChatMessage[]): number {
  return Math.ceil(countPromptTokens(messages) * (1 + CONTEXT_SAFETY_MARGIN));
}

/** How a model's price is looked up: undefined when it has none. */
export type PriceLookup = (model: string) => ModelPricing | undefined;

/** The worst-case cost in USD of one planned call: its estimated prompt and all of its `maxTokens`. */
export function worstCaseCallCostUsd(call: PlannedCall, priceOf: PriceLookup): number {
  const pricing = priceOf(call.agent.model);
  if (!pricing) return 0;
  return (
    (estimatePromptTokens(call.messages) * pricing.inputCostPerMTok +
      call.agent.maxTokens * pricing.outputCostPerMTok) /
    1e6
  );
}

/** The worst-case cost in USD of a layer's planned calls. */
export function worstCaseLayerCostUsd(calls: readonly PlannedCall[], priceOf: PriceLookup): number {
  return calls.reduce((sum, call) => sum + worstCaseCallCostUsd(call, priceOf), 0);
}

/** USD spent by finished layers, an unpriced call counting 0 (see above). */
export function spentUsd(layers: readonly LayerRecord[]): number {
  let total = 0;
  for (const layer of layers) for (const call of layer.calls) total += call.costUsd ?? 0;
  return total;
}
