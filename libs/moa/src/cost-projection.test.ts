import { describe, expect, it } from 'vitest';
import {
  estimatePromptTokens,
  spentUsd,
  worstCaseCallCostUsd,
  worstCaseLayerCostUsd,
} from './cost-projection.js';
import { CONTEXT_SAFETY_MARGIN, countPromptTokens } from './count-tokens.js';
import { planLayer } from './moa-plan.js';
import { answered, layerOf, testPreset } from './testing/moa-records.js';

describe('cost projection', () => {
  it("estimates a prompt at its token count plus the context budgets' margin, rounded up", () => {
    const messages = [
      { role: 'system' as const, content: 'Be brief.' },
      { role: 'user' as const, content: 'What is a mixture of agents? '.repeat(40) },
    ];
    const counted = countPromptTokens(messages);
    expect(estimatePromptTokens(messages)).toBe(Math.ceil(counted * (1 + CONTEXT_SAFETY_MARGIN)));
    expect(estimatePromptTokens(messages)).toBeGreaterThan(counted);
  });

  it('projects a call at its prompt estimate and its whole maxTokens', () => {
    const preset = testPreset({ layers: 1, width: 2 });
    const [call] = planLayer(preset, 1, [{ role: 'user', content: 'x'.repeat(300) }], undefined);
    const price = { inputCostPerMTok: 2, outputCostPerMTok: 8 };
    const expected = (estimatePromptTokens(call!.messages) * 2 + 512 * 8) / 1e6;
    expect(worstCaseCallCostUsd(call!, () => price)).toBeCloseTo(expected, 12);
    expect(worstCaseCallCostUsd(call!, () => undefined)).toBe(0);
    const layer = planLayer(preset, 1, [{ role: 'user', content: 'x'.repeat(300) }], undefined);
    expect(worstCaseLayerCostUsd(layer, () => price)).toBeCloseTo(2 * expected, 12);
  });

  it('sums what finished layers spent, an unpriced call counting 0', () => {
    const preset = testPreset({ layers: 1, width: 2 });
    const planned = planLayer(preset, 1, [{ role: 'user', content: 'q' }], undefined);
    const layer = layerOf(1, 'proposer', [
      answered(planned[0]!, 'a', { costUsd: 0.25 }),
      answered(planned[1]!, 'b', { costUsd: null }),
    ]);
    expect(spentUsd([layer, layer])).toBe(0.5);
  });
});
