import type { CallRecord, LayerRecord } from '@moa-queue/moa';
import { describe, expect, it } from 'vitest';
import { layerView } from './job-view.js';

const call: CallRecord = {
  model: 'fake/aggregator',
  agentIndex: 0,
  status: 'completed',
  output: 'answer',
  usage: { promptTokens: 10, completionTokens: 5 },
  costUsd: null,
  latencyMs: 3,
  attempts: 1,
  startedAt: 0,
  finishedAt: 3,
  finishReason: 'stop',
  error: null,
};
const layerOf = (calls: CallRecord[]): LayerRecord => ({
  layer: 2,
  role: 'aggregator',
  startedAt: 0,
  finishedAt: 3,
  durationMs: 3,
  calls,
});

describe('layerView: what fitting a prompt did', () => {
  it('shows nothing cut on a call sent as built (and on records from before context budgets)', () => {
    expect(layerView(layerOf([call])).calls[0]).toMatchObject({
      references_cut: [],
      max_tokens_lowered: null,
      references_halved: false,
    });
  });

  it('shows the cut references, the lowered max_tokens and the halving in snake_case', () => {
    const fitted: CallRecord = {
      ...call,
      attempts: 2,
      referencesCut: [{ agentIndex: 2, originalTokens: 700, keptTokens: 180 }],
      maxTokensLowered: { from: 2048, to: 300 },
      referenceShare: 0.5,
    };
    expect(layerView(layerOf([fitted])).calls[0]).toMatchObject({
      attempts: 2,
      references_cut: [{ agent_index: 2, original_tokens: 700, kept_tokens: 180 }],
      max_tokens_lowered: { from: 2048, to: 300 },
      references_halved: true,
    });
  });
});
