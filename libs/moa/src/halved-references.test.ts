import { describe, it, expect } from 'vitest';
import { failedCallRecord } from './call-records.js';
import { CONTEXT_LENGTH_EXCEEDED } from './errors/context-length-exceeded.js';
import { needsHalvedReferences, recordAfterHalvedReferences } from './halved-references.js';
import { planLayer } from './moa-plan.js';
import type { CallRecord, LayerRecord, PresetConfig } from './types.js';

const agent = { model: 'p/agg', temperature: 0.7, maxTokens: 512 };

function refused(code: string | null = CONTEXT_LENGTH_EXCEEDED): CallRecord {
  return failedCallRecord({
    model: 'p/agg',
    agentIndex: 0,
    attempts: 1,
    startedAt: 1,
    finishedAt: 2,
    error: { message: 'too long', type: 'invalid_request_error', code },
    pricing: undefined,
  });
}

describe('needsHalvedReferences', () => {
  it('is true of a sent call with references that its provider refused for context length', () => {
    expect(needsHalvedReferences(refused(), 3)).toBe(true);
  });

  it('is false without references, for a call never sent, or for another failure', () => {
    expect(needsHalvedReferences(refused(), 0)).toBe(false);
    expect(needsHalvedReferences({ ...refused(), attempts: 0 }, 3)).toBe(false);
    expect(needsHalvedReferences(refused('invalid_value'), 3)).toBe(false);
  });
});

describe('recordAfterHalvedReferences', () => {
  it("is the retry's record, counting the refused call's attempts", () => {
    const retried = { ...refused(), attempts: 1, referenceShare: 0.5 };
    expect(recordAfterHalvedReferences(refused(), retried)).toEqual({ ...retried, attempts: 2 });
    expect(recordAfterHalvedReferences(undefined, retried)).toBe(retried);
  });
});

describe('planLayer with context budgets', () => {
  const preset: PresetConfig = {
    name: 'p',
    layers: [[agent, agent, agent]],
    aggregator: agent,
    minProposers: 1,
    layerTimeoutMs: 0,
    referencePrompt: 'Synthesize.',
    referenceFormat: 'tagged',
  };
  const answer = (agentIndex: number, output: string | null): CallRecord => ({
    ...refused(),
    agentIndex,
    status: output === null ? 'failed' : 'completed',
    output,
    error: null,
  });
  // Agent 1 failed: the references are agents 0 and 2.
  const previous: LayerRecord = {
    layer: 1,
    role: 'proposer',
    startedAt: 0,
    finishedAt: 0,
    durationMs: 0,
    calls: [answer(0, 'apple '.repeat(600)), answer(1, null), answer(2, 'river '.repeat(900))],
  };
  const messages = [{ role: 'user' as const, content: 'Why?' }];

  it('sends as built without a window, and names cut references by their agent', () => {
    const [asBuilt] = planLayer(preset, 2, messages, previous);
    expect(asBuilt?.contextFit).toEqual({});
    const [fitted] = planLayer(preset, 2, messages, previous, { contextWindowOf: () => 1200 });
    expect(fitted?.contextFit.referencesCut?.map((cut) => cut.agentIndex)).toEqual([0, 2]);
    expect(fitted?.agent).toBe(agent);
  });

  it('records a halved plan, and marks a call that cannot fit as not sent', () => {
    const [halved] = planLayer(preset, 2, messages, previous, { referenceShare: 0.5 });
    expect(halved?.contextFit.referenceShare).toBe(0.5);
    const long = [{ role: 'user' as const, content: 'apple '.repeat(2000) }];
    const [unfit] = planLayer(preset, 2, long, previous, { contextWindowOf: () => 1200 });
    expect(unfit?.messages).toEqual([]);
    expect(unfit?.notSent?.code).toBe(CONTEXT_LENGTH_EXCEEDED);
  });

  it('lowers the agent max_tokens it sends when the room needs it', () => {
    const long = [{ role: 'user' as const, content: 'apple '.repeat(500) }];
    const [lowered] = planLayer(preset, 2, long, previous, { contextWindowOf: () => 1200 });
    expect(lowered?.contextFit.maxTokensLowered).toEqual({ from: 512, to: lowered?.agent.maxTokens });
    expect(lowered?.agent.maxTokens).toBeLessThan(512);
  });
});
