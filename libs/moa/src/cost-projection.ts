import type { PlannedCall } from './moa-plan.js';
import type { ChatMessage, LayerRecord, ModelPricing } from './types.js';

/*
 * The cost cap's arithmetic. Before a layer starts, its worst case is
 * projected: for every call, its prompt at the model's input price plus its
 * whole `maxTokens` at the output price. Prompt tokens are estimated from
 * characters (no tokenizer is bundled): see {@link estimatePromptTokens}.
 * A model with no price is projected at 0 (and costs 0 in what was spent):
 * the cap bounds what can be priced, and an unpriced call is reported with
 * `cost_usd: null` and counted in `moa_llm_cost_unknown_total`.
 */

/** Characters per token assumed by {@link estimatePromptTokens}: fewer than any tokenizer's usual 4, so the estimate runs high. */
export const CHARACTERS_PER_TOKEN_ESTIMATE = 3;

/** Tokens a chat message costs beyond its text (role and separators), as OpenAI counts them. */
const TOKENS_PER_MESSAGE = 4;

/**
 * A conservative estimate of a prompt's tokens: its characters divided by
 * {@link CHARACTERS_PER_TOKEN_ESTIMATE}, rounded up, plus a few per message.
 * English runs about 4 characters per token, so this overestimates ordinary
 * text by about a third; text in scripts that tokenize densely (CJK) can
 * still exceed it. The one place to plug in a real tokenizer.
 */
export function estimatePromptTokens(messages: readonly ChatMessage[]): number {
  let tokens = 0;
  for (const message of messages) {
    tokens += Math.ceil(message.content.length / CHARACTERS_PER_TOKEN_ESTIMATE) + TOKENS_PER_MESSAGE;
  }
  return tokens;
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
