import fc from 'fast-check';
import { describe, it, expect } from 'vitest';
import { countPromptTokens, countTextTokens, usableContextTokens } from './count-tokens.js';
import { cutReferenceNote, fitToContext, MAX_TOKENS_FLOOR, waterFillCap } from './fit-to-context.js';
import { buildAgentMessages, DEFAULT_REFERENCE_PROMPT } from './references.js';
import type { AgentConfig, ChatMessage, ReferenceFormat } from './types.js';

const aggregator: AgentConfig = { model: 'test/aggregator', temperature: 0.7, maxTokens: 512 };
const question: ChatMessage[] = [{ role: 'user', content: 'What is a mixture of agents?' }];

const VOCABULARY = ['apple', 'river', 'stone', 'cloud', 'green', 'house', 'light', 'music', 'paper', 'table'];

/** `count` plain words of one o200k_base token each (no tag-like text: the tagged format keeps them byte for byte). */
function words(count: number, seed = 0): string {
  return Array.from({ length: count }, (_, index) => VOCABULARY[(index * 7 + seed) % VOCABULARY.length]).join(
    ' ',
  );
}

function fit(references: string[], contextWindow: number | undefined, extra: Partial<AgentConfig> = {}) {
  return fitToContext({
    messages: question,
    references,
    agent: { ...aggregator, ...extra },
    referencePrompt: DEFAULT_REFERENCE_PROMPT,
    contextWindow,
  });
}

describe('waterFillCap', () => {
  it('cuts the longest to a common cap, keeping the shorter whole', () => {
    // 100 + 300 + 600 = 1000 into 700: the cap c solves 100 + 2c = 700.
    expect(waterFillCap([100, 300, 600], 700)).toBe(300);
    expect(waterFillCap([100, 300, 600], 500)).toBe(200);
    expect(waterFillCap([100, 300, 600], 1000)).toBe(Number.POSITIVE_INFINITY);
    expect(waterFillCap([100, 300, 600], 0)).toBe(0);
  });

  it('gives the largest cap that fits the budget', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 5000 }), { minLength: 1, maxLength: 8 }),
        fc.integer({ min: 0, max: 20_000 }),
        (lengths, budget) => {
          const cap = waterFillCap(lengths, budget);
          const used = (limit: number) => lengths.reduce((sum, length) => sum + Math.min(length, limit), 0);
          if (cap === Number.POSITIVE_INFINITY) return used(Number.MAX_SAFE_INTEGER) <= budget;
          return used(cap) <= budget && used(cap + 1) > budget;
        },
      ),
    );
  });
});

describe('fitToContext', () => {
  it('sends a prompt that fits as built, max_tokens unchanged', () => {
    const references = [words(50), words(60, 1)];
    const result = fit(references, 32_768);
    expect(result).toEqual({
      outcome: 'fits',
      messages: buildAgentMessages({
        messages: question,
        references,
        agent: aggregator,
        referencePrompt: DEFAULT_REFERENCE_PROMPT,
      }),
      maxTokens: 512,
      referencesCut: [],
      promptTokens: expect.any(Number),
    });
  });

  it('sends a prompt as built, unmeasured, when the window is unknown', () => {
    const result = fit([words(5000)], undefined);
    expect(result).toMatchObject({ outcome: 'fits', referencesCut: [], maxTokens: 512, promptTokens: null });
  });

  it('cuts the longest references first to a common size, each with a visible note', () => {
    const short = words(100, 1);
    const long = words(900, 2);
    const longer = words(1500, 3);
    const result = fit([short, long, longer], 2000);
    if (result.outcome !== 'fits') throw new Error(result.message);
    expect(result.maxTokens).toBe(512);
    expect(result.promptTokens! + result.maxTokens).toBeLessThanOrEqual(usableContextTokens(2000));
    expect(result.referencesCut.map((cut) => cut.index)).toEqual([1, 2]);
    const [cutLong, cutLonger] = result.referencesCut;
    expect(cutLong?.keptTokens).toBe(cutLonger?.keptTokens);
    expect(cutLong?.originalTokens).toBe(countTextTokens(long));
    expect(cutLonger?.originalTokens).toBe(countTextTokens(longer));
    const system = result.messages[0]?.content ?? '';
    expect(system).toContain(`\n${short}\n`);
    expect(system).toContain(cutReferenceNote(cutLong!.keptTokens, cutLong!.originalTokens));
    expect(system).toContain(cutReferenceNote(cutLonger!.keptTokens, cutLonger!.originalTokens));
    // The kept part is the start of the answer.
    expect(system).toContain(long.slice(0, 200));
    expect(result.messages.at(-1)).toEqual(question[0]);
  });

  it('halves the references with referenceShare 0.5, even when they fit', () => {
    const references = [words(300, 1), words(300, 2)];
    const result = fitToContext({
      messages: question,
      references,
      agent: aggregator,
      referencePrompt: DEFAULT_REFERENCE_PROMPT,
      contextWindow: 32_768,
      referenceShare: 0.5,
    });
    if (result.outcome !== 'fits') throw new Error(result.message);
    const original = references.map(countTextTokens);
    const kept = result.referencesCut.reduce((sum, cut) => sum + cut.keptTokens, 0);
    expect(result.referencesCut).toHaveLength(2);
    expect(kept).toBeLessThanOrEqual((original[0]! + original[1]!) / 2);
    expect(kept).toBeGreaterThan((original[0]! + original[1]!) / 2 - 2);
  });

  it('refuses a referenceShare outside (0, 1]', () => {
    for (const referenceShare of [0, -1, 1.5, Number.NaN]) {
      expect(() =>
        fitToContext({
          messages: question,
          references: [],
          agent: aggregator,
          referencePrompt: '',
          contextWindow: 1000,
          referenceShare,
        }),
      ).toThrow(RangeError);
    }
  });

  it('lowers max_tokens when even cut references leave too little room, down to the floor', () => {
    // A question of 1,100 tokens and the reference frame in an 1,800-token budget: 2,048 does not fit, ~430 do.
    const long: ChatMessage[] = [{ role: 'user', content: words(1100) }];
    const result = fitToContext({
      messages: long,
      references: [words(400, 1)],
      agent: { ...aggregator, maxTokens: 2048 },
      referencePrompt: DEFAULT_REFERENCE_PROMPT,
      contextWindow: 2000,
    });
    if (result.outcome !== 'fits') throw new Error(result.message);
    expect(result.maxTokens).toBeLessThan(2048);
    expect(result.maxTokens).toBeGreaterThanOrEqual(MAX_TOKENS_FLOOR);
    expect(result.promptTokens! + result.maxTokens).toBe(usableContextTokens(2000));
    expect(result.referencesCut).toEqual([{ index: 0, originalTokens: expect.any(Number), keptTokens: 0 }]);
  });

  it('fails as context_length_exceeded when the request alone leaves less than the floor', () => {
    const long: ChatMessage[] = [{ role: 'user', content: words(3000) }];
    const result = fitToContext({
      messages: long,
      references: [words(100)],
      agent: aggregator,
      referencePrompt: DEFAULT_REFERENCE_PROMPT,
      contextWindow: 2000,
      model: 'test/aggregator',
    });
    expect(result.outcome).toBe('context_length_exceeded');
    if (result.outcome !== 'context_length_exceeded') return;
    expect(result.promptTokens).toBeGreaterThan(usableContextTokens(2000) - MAX_TOKENS_FLOOR);
    expect(result.message).toContain('test/aggregator');
    expect(result.message).toContain('2000-token context window');
  });

  it('keeps a small agent maxTokens as its own floor', () => {
    const long: ChatMessage[] = [{ role: 'user', content: words(1550) }];
    const result = fitToContext({
      messages: long,
      references: [],
      agent: { ...aggregator, maxTokens: 100 },
      referencePrompt: '',
      contextWindow: 2000,
    });
    expect(result.outcome === 'fits' && result.maxTokens).toBe(100);
  });

  it('always fits, keeps uncut references whole and their order, in both formats', () => {
    const formats: ReferenceFormat[] = ['tagged', 'paper'];
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 1500 }), { minLength: 0, maxLength: 6 }),
        fc.integer({ min: 0, max: 1200 }),
        fc.integer({ min: 1000, max: 8000 }),
        fc.integer({ min: 1, max: 2048 }),
        fc.constantFrom(...formats),
        fc.constantFrom(1, 0.5),
        (sizes, questionWords, contextWindow, maxTokens, referenceFormat, referenceShare) => {
          const references = sizes.map((size, index) => words(size, index + 1) + ` end${index}`);
          const messages: ChatMessage[] = [{ role: 'user', content: words(questionWords) }];
          const agent = { ...aggregator, maxTokens };
          const result = fitToContext({
            messages,
            references,
            agent,
            referencePrompt: DEFAULT_REFERENCE_PROMPT,
            referenceFormat,
            contextWindow,
            referenceShare,
          });
          const usable = usableContextTokens(contextWindow);
          if (result.outcome === 'context_length_exceeded') {
            // Only when the smallest prompt (every reference cut to its note) leaves less than the floor.
            const smallest = countPromptTokens(
              buildAgentMessages({
                messages,
                references: references.map((reference) => cutReferenceNote(0, countTextTokens(reference))),
                agent,
                referencePrompt: DEFAULT_REFERENCE_PROMPT,
                referenceFormat,
              }),
            );
            expect(result.promptTokens).toBe(smallest);
            expect(smallest + Math.min(MAX_TOKENS_FLOOR, maxTokens)).toBeGreaterThan(usable);
            return;
          }
          expect(countPromptTokens(result.messages)).toBe(result.promptTokens);
          expect(result.promptTokens! + result.maxTokens).toBeLessThanOrEqual(usable);
          expect(result.maxTokens).toBeLessThanOrEqual(maxTokens);
          expect(result.maxTokens).toBeGreaterThanOrEqual(Math.min(MAX_TOKENS_FLOOR, maxTokens));
          if (result.maxTokens < maxTokens) {
            expect(result.referencesCut.every((cut) => cut.keptTokens === 0)).toBe(true);
          }
          const system = result.messages[0]?.content ?? '';
          const cutIndexes = new Set(result.referencesCut.map((cut) => cut.index));
          let position = -1;
          references.forEach((reference, index) => {
            // Uncut references appear whole; cut ones keep at least their note; all in order.
            const marker = cutIndexes.has(index)
              ? cutReferenceNote(
                  result.referencesCut.find((cut) => cut.index === index)!.keptTokens,
                  countTextTokens(reference),
                )
              : reference;
            const found = system.indexOf(marker, position + 1);
            expect(found).toBeGreaterThan(position);
            position = found;
          });
          if (cutIndexes.size > 0) {
            const cap = Math.max(...result.referencesCut.map((cut) => cut.keptTokens));
            // Water-filling: every cut one is cut to the same cap, every uncut one is at most the cap.
            expect(result.referencesCut.every((cut) => cut.keptTokens === cap)).toBe(true);
            references.forEach((reference, index) => {
              if (!cutIndexes.has(index)) expect(countTextTokens(reference)).toBeLessThanOrEqual(cap);
            });
          }
        },
      ),
      { numRuns: 150 },
    );
  });
});
