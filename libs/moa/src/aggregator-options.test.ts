import { createFakeProvider, type FakeProvider } from '@moa-queue/fake-provider';
import { afterEach, describe, expect, it } from 'vitest';
import type { AggregatorOptions } from './aggregator-options.js';
import { chatFinishReason, finishReasonLabel } from './aggregator-options.js';
import { failedCallRecord } from './call-records.js';
import { parseMoaConfig, resolvePreset } from './load-config.js';
import { planLayer, truncatedReferencesFrom } from './moa-plan.js';
import { createModelRegistry } from './model-registry.js';
import { buildAgentMessages, DEFAULT_REFERENCE_PROMPT, TRUNCATED_REFERENCE_NOTE } from './references.js';
import { runMoa } from './run-moa.js';
import type { CallRecord, LayerRecord } from './types.js';

const started: FakeProvider[] = [];
afterEach(async () => {
  await Promise.all(started.splice(0).map((fake) => fake.close()));
});

const MESSAGES = [{ role: 'user' as const, content: 'Name a colour.' }];

async function setup() {
  const fake = await createFakeProvider({ outputWords: 12 });
  started.push(fake);
  const config = parseMoaConfig({
    providers: { fake: { baseURL: fake.url } },
    presets: {
      duo: {
        // The second proposer is capped below the fake's 12-word answers: it is cut off.
        layers: [
          [
            { model: 'fake/a', temperature: 0.9 },
            { model: 'fake/b', maxTokens: 5 },
          ],
        ],
        aggregator: { model: 'fake/agg', temperature: 0.7 },
      },
    },
  });
  const preset = resolvePreset(config, 'duo')!;
  return { fake, preset, models: createModelRegistry(config) };
}

describe('finish reasons and aggregator options in the in-process runner', () => {
  it("records each call's finish_reason and notes a cut-off proposer in the aggregator's references", async () => {
    const { fake, preset, models } = await setup();
    const result = await runMoa({ preset, messages: MESSAGES, models });
    expect(result.status).toBe('completed');
    const [proposers, aggregator] = result.layers;
    expect(proposers!.calls.map((call) => [call.model, call.finishReason])).toEqual([
      ['fake/a', 'stop'],
      ['fake/b', 'length'],
    ]);
    expect(aggregator!.calls[0]!.finishReason).toBe('stop');
    const system = fake.requests.find((request) => request.model === 'agg')!.messages[0]!.content;
    // Only the second reference carries the note, right after its text.
    expect(system.split(TRUNCATED_REFERENCE_NOTE)).toHaveLength(2);
    const cut = proposers!.calls[1]!.output!;
    expect(system).toContain(`${cut}\n\n${TRUNCATED_REFERENCE_NOTE}`);
  });

  it('sends the request options to the aggregator call only; proposers keep their preset sampling', async () => {
    const { fake, preset, models } = await setup();
    const aggregatorOptions: AggregatorOptions = {
      temperature: 0,
      topP: 0.5,
      seed: 42,
      stop: ['END'],
      presencePenalty: 0.5,
      frequencyPenalty: -0.5,
      responseFormat: { type: 'json_object' },
    };
    const result = await runMoa({ preset, messages: MESSAGES, models, aggregatorOptions });
    expect(result.status).toBe('completed');
    const byModel = new Map(fake.requests.map((request) => [request.model, request]));
    expect(byModel.get('agg')).toMatchObject({
      temperature: 0,
      topP: 0.5,
      seed: 42,
      stop: ['END'],
      presencePenalty: 0.5,
      frequencyPenalty: -0.5,
      responseFormat: { type: 'json_object' },
    });
    for (const model of ['a', 'b']) {
      const request = byModel.get(model)!;
      for (const key of ['topP', 'seed', 'stop', 'presencePenalty', 'frequencyPenalty', 'responseFormat']) {
        expect(request, `${model}.${key}`).not.toHaveProperty(key);
      }
    }
    expect(byModel.get('a')!.temperature).toBe(0.9);
    // The fake honours json_object: the aggregator's answer is JSON.
    expect(JSON.parse(result.output!)).toEqual({ answer: expect.any(String) });
  });
});

describe('truncation notes', () => {
  const agent = { model: 'p/m', temperature: 0.7, maxTokens: 10 };

  it('leaves references as they were without flags (backwards compatible)', () => {
    const plain = buildAgentMessages({
      messages: MESSAGES,
      references: ['one', 'two'],
      agent,
      referencePrompt: DEFAULT_REFERENCE_PROMPT,
    });
    const unflagged = buildAgentMessages({
      messages: MESSAGES,
      references: ['one', 'two'],
      agent,
      referencePrompt: DEFAULT_REFERENCE_PROMPT,
      truncated: [false, false],
    });
    expect(unflagged).toEqual(plain);
    expect(plain[0]!.content).not.toContain(TRUNCATED_REFERENCE_NOTE);
  });

  it('adds the note inside the flagged reference, after its text', () => {
    const [system] = buildAgentMessages({
      messages: MESSAGES,
      references: ['one', 'two'],
      agent,
      referencePrompt: DEFAULT_REFERENCE_PROMPT,
      truncated: [false, true],
    });
    expect(system!.content).toMatch(
      new RegExp(
        `index="2">\\ntwo\\n\\n${TRUNCATED_REFERENCE_NOTE.replace(/[[\]().]/g, '\\$&')}\\n</reference-`,
      ),
    );
    expect(system!.content.split(TRUNCATED_REFERENCE_NOTE)).toHaveLength(2);
  });

  it('flags the references of calls that stopped on length, in reference order', () => {
    const call = (
      agentIndex: number,
      status: CallRecord['status'],
      finishReason: string | null,
    ): CallRecord => ({
      model: 'p/m',
      agentIndex,
      status,
      output: status === 'completed' ? `answer ${agentIndex}` : null,
      usage: { promptTokens: 1, completionTokens: 1 },
      costUsd: null,
      latencyMs: 1,
      attempts: 1,
      startedAt: 0,
      finishedAt: 1,
      finishReason,
      error: null,
    });
    const layer: LayerRecord = {
      layer: 1,
      role: 'proposer',
      startedAt: 0,
      finishedAt: 1,
      durationMs: 1,
      calls: [call(2, 'completed', 'length'), call(0, 'completed', 'stop'), call(1, 'failed', null)],
    };
    expect(truncatedReferencesFrom(layer)).toEqual([false, true]);
    const preset = resolvePreset(
      parseMoaConfig({
        providers: { p: { baseURL: 'http://127.0.0.1:1/v1' } },
        presets: { x: { layers: [[{ model: 'p/m' }]], aggregator: { model: 'p/m' } } },
      }),
      'x',
    )!;
    const [aggregatorCall] = planLayer(preset, 2, MESSAGES, layer);
    expect(aggregatorCall!.messages[0]!.content).toContain(`answer 2\n\n${TRUNCATED_REFERENCE_NOTE}`);
    expect(aggregatorCall!.messages[0]!.content).not.toContain(`answer 0\n\n${TRUNCATED_REFERENCE_NOTE}`);
  });
});

describe('finish reason helpers', () => {
  it('labels finish reasons with a fixed set', () => {
    expect(
      ['stop', 'length', 'content_filter', 'tool_calls', 'function_call', 'eos', '', null].map(
        finishReasonLabel,
      ),
    ).toEqual([
      'stop',
      'length',
      'content_filter',
      'tool_calls',
      'tool_calls',
      'other',
      'unknown',
      'unknown',
    ]);
  });

  it("maps a provider's reason to OpenAI's set for a chat completion", () => {
    expect(chatFinishReason('length')).toBe('length');
    expect(chatFinishReason('end_turn')).toBe('stop');
    expect(chatFinishReason(null)).toBe('stop');
  });

  it('keeps content_filter on a call the content filter failed', () => {
    const record = failedCallRecord({
      model: 'p/m',
      agentIndex: 0,
      attempts: 1,
      startedAt: 0,
      finishedAt: 1,
      error: { message: 'filtered', type: 'content_filter_error', code: 'content_filter' },
      pricing: undefined,
    });
    expect(record.finishReason).toBe('content_filter');
    expect(
      failedCallRecord({
        model: 'p/m',
        agentIndex: 0,
        attempts: 1,
        startedAt: 0,
        finishedAt: 1,
        error: { message: 'down', type: 'server_error', code: null },
        pricing: undefined,
      }).finishReason,
    ).toBeNull();
  });
});
