import { describe, expect, it } from 'vitest';
import { estimatePromptTokens } from './cost-projection.js';
import { decideNext, type MoaDecision, type MoaState } from './moa-decider.js';
import { planLayer } from './moa-plan.js';
import { answered, failed, keysOf, layerOf, testPreset } from './testing/moa-records.js';
import type { ChatMessage, ModelPricing } from './types.js';

const MESSAGES: ChatMessage[] = [{ role: 'user', content: 'What is the capital of France?' }];
const PRICE: ModelPricing = { inputCostPerMTok: 1, outputCostPerMTok: 10 };

function expectType<T extends MoaDecision['type']>(
  decision: MoaDecision,
  type: T,
): Extract<MoaDecision, { type: T }> {
  expect(decision.type).toBe(type);
  return decision as Extract<MoaDecision, { type: T }>;
}

describe('decideNext', () => {
  it('runs layer 1 first, every call of it, without references', () => {
    const preset = testPreset({ layers: 2, width: 3 });
    const run = expectType(decideNext({ preset, messages: MESSAGES, layers: [] }), 'run_layer');
    expect(run.step).toMatchObject({ layer: 1, role: 'proposer', round: 0, index: 0, stopped: null });
    expect(run.calls.map((call) => call.agent.model)).toEqual(['p/L1A0', 'p/L1A1', 'p/L1A2']);
    expect(run.calls).toEqual(planLayer(preset, 1, MESSAGES, undefined));
  });

  it('plans only the calls not yet finished, and closes the layer once all have', () => {
    const preset = testPreset({ layers: 1, width: 3 });
    const planned = planLayer(preset, 1, MESSAGES, undefined);
    const state: MoaState = {
      preset,
      messages: MESSAGES,
      layers: [],
      finished: new Set(keysOf(1, planned.slice(0, 2))),
    };
    const run = expectType(decideNext(state), 'run_layer');
    expect(run.calls.map((call) => call.agentIndex)).toEqual([2]);
    const close = expectType(decideNext({ ...state, finished: new Set(keysOf(1, planned)) }), 'close_layer');
    expect(close.finished.map((call) => call.agentIndex)).toEqual([0, 1, 2]);
    expect(close.abandoned).toEqual([]);
  });

  it('closes a proposer layer past its deadline, abandoning the unfinished calls', () => {
    const preset = testPreset({ layers: 1, width: 3, layerTimeoutMs: 100 });
    const planned = planLayer(preset, 1, MESSAGES, undefined);
    const close = expectType(
      decideNext({
        preset,
        messages: MESSAGES,
        layers: [],
        finished: new Set(keysOf(1, planned.slice(0, 1))),
        layersPastDeadline: new Set([1]),
      }),
      'close_layer',
    );
    expect(close.finished.map((call) => call.agentIndex)).toEqual([0]);
    expect(close.abandoned.map((call) => call.agentIndex)).toEqual([1, 2]);
  });

  it("feeds the next layer the previous one's answers, and the aggregator the last layer's", () => {
    const preset = testPreset({ layers: 2, width: 2 });
    const first = planLayer(preset, 1, MESSAGES, undefined);
    const layer1 = layerOf(1, 'proposer', [
      answered(first[0]!, 'Paris'),
      answered(first[1]!, 'Paris, France'),
    ]);
    const run2 = expectType(decideNext({ preset, messages: MESSAGES, layers: [layer1] }), 'run_layer');
    expect(run2.step).toMatchObject({ layer: 2, index: 1 });
    expect(run2.calls).toEqual(planLayer(preset, 2, MESSAGES, layer1));
    const second = run2.calls;
    const layer2 = layerOf(2, 'proposer', [answered(second[0]!, 'It is Paris'), failed(second[1]!)]);
    const run3 = expectType(
      decideNext({ preset, messages: MESSAGES, layers: [layer1, layer2] }),
      'run_layer',
    );
    expect(run3.step).toMatchObject({ layer: 3, role: 'aggregator', index: 2, stopped: null });
    expect(run3.calls).toEqual(planLayer(preset, 3, MESSAGES, layer2));
  });

  it('fails with too_few_proposers when a layer has fewer successes than minProposers', () => {
    const preset = testPreset({ layers: 2, width: 3, minProposers: 2 });
    const planned = planLayer(preset, 1, MESSAGES, undefined);
    const layer1 = layerOf(1, 'proposer', [
      answered(planned[0]!, 'a'),
      failed(planned[1]!),
      failed(planned[2]!),
    ]);
    const fail = expectType(decideNext({ preset, messages: MESSAGES, layers: [layer1] }), 'fail');
    expect(fail.error.code).toBe('too_few_proposers');
    expect(fail.stopped).toBeNull();
  });

  it("finishes with the aggregator's answer, and fails when it failed", () => {
    const preset = testPreset({ layers: 1, width: 1 });
    const planned = planLayer(preset, 1, MESSAGES, undefined);
    const layer1 = layerOf(1, 'proposer', [answered(planned[0]!, 'Paris')]);
    const aggregator = planLayer(preset, 2, MESSAGES, layer1)[0]!;
    const finish = expectType(
      decideNext({
        preset,
        messages: MESSAGES,
        layers: [layer1, layerOf(2, 'aggregator', [answered(aggregator, 'Paris.')])],
      }),
      'finish',
    );
    expect(finish).toEqual({ type: 'finish', output: 'Paris.', stopped: null });
    const fail = expectType(
      decideNext({
        preset,
        messages: MESSAGES,
        layers: [layer1, layerOf(2, 'aggregator', [failed(aggregator, { type: 'invalid_request_error' })])],
      }),
      'fail',
    );
    expect(fail.error.code).toBe('aggregator_failed');
  });

  describe('cancellation', () => {
    it('cancels before any call, and instead of the next layer', () => {
      const preset = testPreset({ layers: 2 });
      expect(decideNext({ preset, messages: MESSAGES, layers: [], cancelled: true })).toEqual({
        type: 'cancel',
        error: { message: 'the request was cancelled', type: 'cancelled', code: 'cancelled' },
      });
      const planned = planLayer(preset, 1, MESSAGES, undefined);
      const layer1 = layerOf(
        1,
        'proposer',
        planned.map((call) => answered(call, 'x')),
      );
      expectType(decideNext({ preset, messages: MESSAGES, layers: [layer1], cancelled: true }), 'cancel');
    });

    it('records a layer whose calls all ended before it cancels, and cancels a completed aggregator', () => {
      const preset = testPreset({ layers: 1, width: 2 });
      const planned = planLayer(preset, 1, MESSAGES, undefined);
      const finished = new Set(keysOf(1, planned));
      expectType(
        decideNext({ preset, messages: MESSAGES, layers: [], finished, cancelled: true }),
        'close_layer',
      );
      const partly = new Set(keysOf(1, planned.slice(0, 1)));
      expectType(
        decideNext({ preset, messages: MESSAGES, layers: [], finished: partly, cancelled: true }),
        'cancel',
      );
      const layer1 = layerOf(
        1,
        'proposer',
        planned.map((call) => answered(call, 'x')),
      );
      const aggregator = planLayer(preset, 2, MESSAGES, layer1)[0]!;
      const done = layerOf(2, 'aggregator', [answered(aggregator, 'y')]);
      expectType(
        decideNext({ preset, messages: MESSAGES, layers: [layer1, done], cancelled: true }),
        'cancel',
      );
    });
  });

  describe('early stop', () => {
    const preset = testPreset({ layers: 3, width: 3, earlyStop: { minAgreement: 0.8 } });
    const planned = planLayer(preset, 1, MESSAGES, undefined);

    it('skips the remaining proposer layers when the answers agree enough', () => {
      const layer1 = layerOf(1, 'proposer', [
        answered(planned[0]!, 'The capital of France is Paris.'),
        answered(planned[1]!, 'the capital of france is PARIS'),
        failed(planned[2]!),
      ]);
      const run = expectType(decideNext({ preset, messages: MESSAGES, layers: [layer1] }), 'run_layer');
      expect(run.step).toMatchObject({ layer: 4, role: 'aggregator', index: 1 });
      expect(run.step.stopped).toEqual({ reason: 'agreement', afterLayer: 1 });
      // The aggregator gets the agreeing layer's answers as references.
      expect(run.calls).toEqual(planLayer(preset, 4, MESSAGES, layer1));
      const done = layerOf(4, 'aggregator', [answered(run.calls[0]!, 'Paris')]);
      expect(decideNext({ preset, messages: MESSAGES, layers: [layer1, done] })).toEqual({
        type: 'finish',
        output: 'Paris',
        stopped: { reason: 'agreement', afterLayer: 1 },
      });
    });

    it('goes on when the answers disagree, when one answer is left, or without the policy', () => {
      const disagreeing = layerOf(1, 'proposer', [
        answered(planned[0]!, 'Paris'),
        answered(planned[1]!, 'Lyon is the largest city'),
        answered(planned[2]!, 'Marseille'),
      ]);
      expect(
        expectType(decideNext({ preset, messages: MESSAGES, layers: [disagreeing] }), 'run_layer').step.layer,
      ).toBe(2);
      const alone = layerOf(1, 'proposer', [
        answered(planned[0]!, 'Paris'),
        failed(planned[1]!),
        failed(planned[2]!),
      ]);
      expect(
        expectType(decideNext({ preset, messages: MESSAGES, layers: [alone] }), 'run_layer').step.layer,
      ).toBe(2);
      const same = layerOf(
        1,
        'proposer',
        planned.map((call) => answered(call, 'Paris')),
      );
      const { earlyStop: _off, ...withoutPolicy } = preset;
      expect(
        expectType(decideNext({ preset: withoutPolicy, messages: MESSAGES, layers: [same] }), 'run_layer')
          .step.layer,
      ).toBe(2);
    });

    it('is no stop after the last proposer layer', () => {
      const two = testPreset({ layers: 1, width: 2, earlyStop: { minAgreement: 0 } });
      const first = planLayer(two, 1, MESSAGES, undefined);
      const layer1 = layerOf(
        1,
        'proposer',
        first.map((call) => answered(call, 'Paris')),
      );
      expect(
        expectType(decideNext({ preset: two, messages: MESSAGES, layers: [layer1] }), 'run_layer').step
          .stopped,
      ).toBeNull();
    });
  });

  describe('cost cap', () => {
    const priceOf = () => PRICE;
    /** The worst case of a layer's planned calls at {@link PRICE}. */
    const worstCase = (calls: ReturnType<typeof planLayer>) =>
      calls.reduce(
        (sum, call) => sum + (estimatePromptTokens(call.messages) * 1 + call.agent.maxTokens * 10) / 1e6,
        0,
      );

    it('starts a layer whose worst case fits the cap exactly', () => {
      const base = testPreset({ layers: 2, width: 2 });
      const cap = worstCase(planLayer(base, 1, MESSAGES, undefined));
      const run = expectType(
        decideNext({ preset: { ...base, maxCostUsd: cap }, messages: MESSAGES, layers: [], priceOf }),
        'run_layer',
      );
      expect(run.step.layer).toBe(1);
    });

    it('skips to the aggregator when the next proposer layer would pass the cap', () => {
      const base = testPreset({ layers: 2, width: 5 });
      const first = planLayer(base, 1, MESSAGES, undefined);
      const layer1 = layerOf(
        1,
        'proposer',
        first.map((call) => answered(call, 'Paris', { costUsd: 0.001 })),
      );
      const aggregator = planLayer(base, 3, MESSAGES, layer1);
      // Room for the aggregator after layer 1, not for layer 2 (5 proposers at 512 tokens each cost more).
      const cap = 0.005 + worstCase(aggregator) + 0.000001;
      expect(worstCase(planLayer(base, 2, MESSAGES, layer1))).toBeGreaterThan(worstCase(aggregator));
      const preset = { ...base, maxCostUsd: cap };
      const run = expectType(
        decideNext({ preset, messages: MESSAGES, layers: [layer1], priceOf }),
        'run_layer',
      );
      expect(run.step).toMatchObject({
        layer: 3,
        role: 'aggregator',
        stopped: { reason: 'cost_cap', afterLayer: 1 },
      });
      expect(run.calls).toEqual(aggregator);
      const done = layerOf(3, 'aggregator', [answered(aggregator[0]!, 'Paris', { costUsd: 0.01 })]);
      // The aggregator's own cost does not change what was decided before it.
      expect(decideNext({ preset, messages: MESSAGES, layers: [layer1, done], priceOf })).toEqual({
        type: 'finish',
        output: 'Paris',
        stopped: { reason: 'cost_cap', afterLayer: 1 },
      });
    });

    it('fails with cost_cap_exceeded, keeping its layers, when even the aggregator cannot fit', () => {
      const base = testPreset({ layers: 2, width: 2 });
      const first = planLayer(base, 1, MESSAGES, undefined);
      const layer1 = layerOf(
        1,
        'proposer',
        first.map((call) => answered(call, 'Paris', { costUsd: 0.001 })),
      );
      const preset = { ...base, maxCostUsd: 0.003 };
      const fail = expectType(decideNext({ preset, messages: MESSAGES, layers: [layer1], priceOf }), 'fail');
      expect(fail.error).toMatchObject({ type: 'moa_error', code: 'cost_cap_exceeded' });
      expect(fail.error.message).toContain('cap of $0.00300');
      expect(fail.stopped).toEqual({ reason: 'cost_cap', afterLayer: 1 });
    });

    it('goes straight to the aggregator when not even layer 1 fits, and projects unpriced models at 0', () => {
      const base = testPreset({ layers: 1, width: 8 });
      const aggregator = planLayer(base, 2, MESSAGES, undefined);
      const preset = { ...base, maxCostUsd: worstCase(aggregator) };
      const run = expectType(decideNext({ preset, messages: MESSAGES, layers: [], priceOf }), 'run_layer');
      expect(run.step).toMatchObject({
        layer: 2,
        role: 'aggregator',
        stopped: { reason: 'cost_cap', afterLayer: 0 },
      });
      const unpriced = expectType(decideNext({ preset, messages: MESSAGES, layers: [] }), 'run_layer');
      expect(unpriced.step.layer).toBe(1);
    });
  });

  describe('context length', () => {
    const preset = testPreset({ layers: 1, width: 2 });
    const first = planLayer(preset, 1, MESSAGES, undefined);
    const layer1 = layerOf(
      1,
      'proposer',
      first.map((call) => answered(call, 'Paris')),
    );
    const aggregator = planLayer(preset, 2, MESSAGES, layer1)[0]!;
    const tooLong = failed(aggregator, { type: 'invalid_request_error', code: 'context_length_exceeded' });

    it('runs the aggregator again once, with half the reference budget, as a new call', () => {
      const run = expectType(
        decideNext({
          preset,
          messages: MESSAGES,
          layers: [layer1, layerOf(2, 'aggregator', [tooLong])],
          finished: new Set([...keysOf(1, first), ...keysOf(2, [aggregator])]),
        }),
        'run_layer',
      );
      expect(run.step).toMatchObject({
        layer: 2,
        role: 'aggregator',
        round: 1,
        referenceShare: 0.5,
        index: 1,
      });
      expect(run.calls).toHaveLength(1);
      expect(run.calls[0]).toMatchObject({ agentIndex: 0, contextFit: { referenceShare: 0.5 } });
    });

    it('fails when the second run exceeds the context too', () => {
      const fail = expectType(
        decideNext({
          preset,
          messages: MESSAGES,
          layers: [layer1, layerOf(2, 'aggregator', [tooLong], 0.5)],
        }),
        'fail',
      );
      expect(fail.error.code).toBe('aggregator_failed');
    });

    it('never runs a proposer again, nor an aggregator that failed otherwise', () => {
      const other = failed(aggregator, { type: 'server_error' });
      expectType(
        decideNext({ preset, messages: MESSAGES, layers: [layer1, layerOf(2, 'aggregator', [other])] }),
        'fail',
      );
    });
  });
});
