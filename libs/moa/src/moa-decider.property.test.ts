import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  decideNext,
  isTerminal,
  stepCallKey,
  type MoaDecision,
  type TerminalDecision,
} from './moa-decider.js';
import { spentUsd, worstCaseLayerCostUsd } from './cost-projection.js';
import { answered, failed, layerOf, testPreset } from './testing/moa-records.js';
import type { CallRecord, ChatMessage, LayerRecord } from './types.js';

const MESSAGES: ChatMessage[] = [{ role: 'user', content: 'Name a colour.' }];
const WORDS = ['red', 'green', 'blue', 'the', 'colour', 'is'];

/** What one call does when it runs. */
const outcomeArbitrary = fc.oneof(
  fc.record({
    kind: fc.constant('answer' as const),
    words: fc.array(fc.constantFrom(...WORDS), { minLength: 0, maxLength: 4 }),
    costUsd: fc.constantFrom(0, 0.0001, 0.001, 0.01),
  }),
  fc.record({
    kind: fc.constant('error' as const),
    type: fc.constantFrom('server_error', 'invalid_request_error', 'timeout_error'),
    code: fc.constantFrom(null, 'context_length_exceeded'),
  }),
);

/** A request's preset, policies and everything that happens to it. */
const scenarioArbitrary = fc.record({
  layers: fc.integer({ min: 1, max: 3 }),
  width: fc.integer({ min: 1, max: 3 }),
  minProposers: fc.integer({ min: 1, max: 3 }),
  minAgreement: fc.option(fc.double({ min: 0, max: 1, noNaN: true })),
  maxCostUsd: fc.option(fc.constantFrom(0.001, 0.005, 0.02, 0.05, 1)),
  priced: fc.boolean(),
  outcomes: fc.array(outcomeArbitrary, { minLength: 1, maxLength: 30 }),
  /** How many of a layer's pending calls finish at each wake-up. */
  finishing: fc.array(fc.integer({ min: 1, max: 3 }), { minLength: 1, maxLength: 10 }),
  /** Wake-ups after which the request is cancelled, the running layer's deadline passes. */
  cancelAfter: fc.option(fc.integer({ min: 0, max: 12 })),
  deadlineAfter: fc.option(fc.integer({ min: 0, max: 12 })),
});

type Scenario = typeof scenarioArbitrary extends fc.Arbitrary<infer T> ? T : never;

/** Carries out the decider's decisions the way a runner does, with the scenario's outcomes. */
function simulate(scenario: Scenario) {
  const preset = testPreset({
    layers: scenario.layers,
    width: scenario.width,
    minProposers: Math.min(scenario.minProposers, scenario.width),
    ...(scenario.minAgreement === null ? {} : { earlyStop: { minAgreement: scenario.minAgreement } }),
    ...(scenario.maxCostUsd === null ? {} : { maxCostUsd: scenario.maxCostUsd }),
  });
  const layers: LayerRecord[] = [];
  const records = new Map<string, CallRecord>();
  const pastDeadline = new Set<number>();
  const decisions: MoaDecision[] = [];
  /** What had been spent when each decision was made. */
  const spentBefore: number[] = [];
  const terminals: TerminalDecision[] = [];
  let outcome = 0;
  for (let wakeUp = 0; wakeUp < 200 && terminals.length === 0; wakeUp += 1) {
    const state = {
      preset,
      messages: MESSAGES,
      layers,
      finished: new Set(records.keys()),
      layersPastDeadline: pastDeadline,
      cancelled: scenario.cancelAfter !== null && wakeUp >= scenario.cancelAfter,
      priceOf: () => (scenario.priced ? { inputCostPerMTok: 1, outputCostPerMTok: 2 } : undefined),
    };
    const decision = decideNext(state);
    decisions.push(decision);
    spentBefore.push(spentUsd(layers));
    if (isTerminal(decision)) {
      terminals.push(decision);
      // The end is stable: asking again, nothing having happened, gives the same end.
      expect(decideNext(state)).toEqual(decision);
      break;
    }
    const { step } = decision;
    if (decision.type === 'run_layer') {
      for (const call of decision.calls) expect(records.has(stepCallKey(step, call))).toBe(false);
      const count = Math.min(
        decision.calls.length,
        scenario.finishing[wakeUp % scenario.finishing.length] ?? 1,
      );
      for (const call of decision.calls.slice(0, count)) {
        const next = scenario.outcomes[outcome % scenario.outcomes.length]!;
        outcome += 1;
        records.set(
          stepCallKey(step, call),
          next.kind === 'answer'
            ? answered(call, next.words.join(' '), { costUsd: next.costUsd })
            : failed(call, { type: next.type, code: next.code }),
        );
      }
      if (scenario.deadlineAfter !== null && wakeUp >= scenario.deadlineAfter) pastDeadline.add(step.layer);
    } else {
      const calls = [
        ...decision.finished.map((call) => records.get(stepCallKey(step, call))!),
        ...decision.abandoned.map((call) => failed(call, { type: 'timeout_error', code: 'layer_deadline' })),
      ];
      layers.splice(step.index, layers.length, layerOf(step.layer, step.role, calls, step.referenceShare));
    }
  }
  return { preset, layers, records, decisions, spentBefore, terminals };
}

describe('decideNext over any sequence of call outcomes', () => {
  it('ends every request in exactly one terminal state', () => {
    fc.assert(
      fc.property(scenarioArbitrary, (scenario) => {
        const { terminals, layers } = simulate(scenario);
        expect(terminals).toHaveLength(1);
        const [end] = terminals;
        if (end!.type === 'finish') {
          expect(layers.at(-1)?.role).toBe('aggregator');
          expect(layers.at(-1)?.calls[0]?.status).toBe('completed');
        }
      }),
      { numRuns: 500 },
    );
  });

  it('never plans a finished call again, and makes each call at most once', () => {
    fc.assert(
      fc.property(scenarioArbitrary, (scenario) => {
        const { decisions } = simulate(scenario);
        const planned = new Set<string>();
        const closed = new Set<string>();
        for (const decision of decisions) {
          if (decision.type === 'run_layer') {
            for (const call of decision.calls) {
              const key = stepCallKey(decision.step, call);
              expect(closed.has(key)).toBe(false);
              planned.add(key);
            }
          } else if (decision.type === 'close_layer') {
            for (const call of [...decision.finished, ...decision.abandoned]) {
              closed.add(stepCallKey(decision.step, call));
            }
          }
        }
      }),
      { numRuns: 500 },
    );
  });

  it('starts no layer whose worst case would pass the cap, and names the cap when it ends a request', () => {
    fc.assert(
      fc.property(scenarioArbitrary, (scenario) => {
        fc.pre(scenario.priced && scenario.maxCostUsd !== null);
        const { decisions, spentBefore, terminals, preset } = simulate(scenario);
        const priceOf = () => ({ inputCostPerMTok: 1, outputCostPerMTok: 2 });
        decisions.forEach((decision, index) => {
          // A layer starts when its first calls are planned; later wake-ups only finish it.
          if (decision.type !== 'run_layer' || decision.calls.length !== decision.step.planned.length) return;
          const worstCase = worstCaseLayerCostUsd(decision.step.planned, priceOf);
          expect(spentBefore[index]! + worstCase).toBeLessThanOrEqual(preset.maxCostUsd!);
        });
        const end = terminals[0]!;
        if (end.type === 'fail' && end.error.code === 'cost_cap_exceeded') {
          expect(end.stopped?.reason).toBe('cost_cap');
        }
        if (end.type === 'finish' && end.stopped !== null) {
          const stops = decisions.filter(
            (decision) => decision.type === 'run_layer' && decision.step.stopped,
          );
          expect(stops.length).toBeGreaterThan(0);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('keeps layers in the order they ran, each layer once, the aggregator last', () => {
    fc.assert(
      fc.property(scenarioArbitrary, (scenario) => {
        const { layers } = simulate(scenario);
        const numbers = layers.map((layer) => layer.layer);
        expect([...numbers].sort((left, right) => left - right)).toEqual(numbers);
        expect(new Set(numbers).size).toBe(numbers.length);
        layers.slice(0, -1).forEach((layer) => expect(layer.role).toBe('proposer'));
      }),
      { numRuns: 300 },
    );
  });
});
