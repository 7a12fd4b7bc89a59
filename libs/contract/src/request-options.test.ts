import { parseMoaConfig } from '@moa-queue/moa';
import { describe, expect, it } from 'vitest';
import { chatCompletionSchema } from './chat-request-schema.js';
import { jobDataSchemasFor, requestJobDataSchema } from './job-data-schemas.js';
import { newRequestData } from './new-request.js';
import {
  aggregatorOptionsOf,
  maxTokensOf,
  policyOverridesOf,
  requestIssueCode,
  withPolicies,
  UNSUPPORTED_PARAMETER,
  UNSUPPORTED_PARAMETER_NAMES,
} from './request-options.js';

const MESSAGES = [{ role: 'user', content: 'Hello?' }];

/** The first issue of a chat body, as the API reports it: path, message and code. */
function firstIssue(body: Record<string, unknown>) {
  const result = chatCompletionSchema.safeParse({ model: 'moa', messages: MESSAGES, ...body });
  if (result.success) return undefined;
  const issue = result.error.issues[0];
  return {
    path: issue?.path.join('.'),
    message: issue?.message,
    code: requestIssueCode(issue, 'invalid_value'),
  };
}

describe('request options on the chat schema (OpenAI ranges)', () => {
  it.each([
    [{ temperature: 2.01 }, 'temperature', 'must be at most 2 (a number from 0 to 2)'],
    [{ temperature: -0.1 }, 'temperature', 'must be at least 0 (a number from 0 to 2)'],
    [{ temperature: 'hot' }, 'temperature', 'must be a number from 0 to 2'],
    [{ top_p: 1.5 }, 'top_p', 'must be at most 1 (a number from 0 to 1)'],
    [{ presence_penalty: -2.5 }, 'presence_penalty', 'must be at least -2 (a number from -2 to 2)'],
    [{ frequency_penalty: 3 }, 'frequency_penalty', 'must be at most 2 (a number from -2 to 2)'],
    [{ seed: 1.5 }, 'seed', 'must be an integer from -9007199254740991 to 9007199254740991'],
    [{ seed: 2 ** 60 }, 'seed', 'must be an integer from -9007199254740991 to 9007199254740991'],
    [{ seed: '7' }, 'seed', 'must be an integer'],
    [{ stop: ['a', 'b', 'c', 'd', 'e'] }, 'stop', 'must be at most 4 strings'],
    [{ stop: 7 }, 'stop', 'must be a string or an array of at most 4 strings'],
    [{ max_tokens: 0 }, 'max_tokens', 'must be at least 1'],
    [{ max_completion_tokens: 0 }, 'max_completion_tokens', 'must be at least 1'],
    [{ max_tokens: 2.5 }, 'max_tokens', 'must be an integer of at least 1'],
    [{ n: 0 }, 'n', 'must be at least 1'],
    [
      { response_format: { type: 'xml' } },
      'response_format.type',
      'must be an object whose type is text, json_object or json_schema',
    ],
  ])('refuses %j naming the field and the bound', (body, path, message) => {
    expect(firstIssue(body)).toEqual({ path, message, code: 'invalid_value' });
  });

  it('accepts every option at its bounds, and nulls', () => {
    for (const body of [
      { temperature: 0, top_p: 0, presence_penalty: -2, frequency_penalty: -2, seed: -5, n: 1 },
      { temperature: 2, top_p: 1, presence_penalty: 2, frequency_penalty: 2, stop: 'END', max_tokens: 1 },
      { stop: ['a', 'b', 'c', 'd'], max_completion_tokens: 1_000_000 },
      { temperature: null, top_p: null, seed: null, stop: null, response_format: null, n: null },
      { response_format: { type: 'text' } },
      { response_format: { type: 'json_object' } },
      {
        response_format: {
          type: 'json_schema',
          json_schema: { name: 'answer', schema: { type: 'object' }, strict: true },
        },
      },
      // Parameters that cannot be honoured pass while unset.
      { tools: [], logprobs: false, top_logprobs: 0, tool_choice: 'none', modalities: ['text'] },
      // Others are accepted and ignored.
      { user: 'someone', store: false, logit_bias: { 50256: -100 } },
    ]) {
      expect(firstIssue(body), JSON.stringify(body)).toBeUndefined();
    }
  });

  it.each([
    [{ n: 2 }, 'n'],
    [{ logprobs: true }, 'logprobs'],
    [{ top_logprobs: 3 }, 'top_logprobs'],
    [{ tools: [{ type: 'function', function: { name: 'f' } }] }, 'tools'],
    [{ tool_choice: 'auto' }, 'tool_choice'],
    [{ functions: [{ name: 'f' }] }, 'functions'],
    [{ function_call: 'auto' }, 'function_call'],
    [{ parallel_tool_calls: true }, 'parallel_tool_calls'],
    [{ audio: { voice: 'alloy', format: 'mp3' } }, 'audio'],
    [{ modalities: ['text', 'audio'] }, 'modalities'],
    [{ prediction: { type: 'content', content: 'x' } }, 'prediction'],
    [{ web_search_options: {} }, 'web_search_options'],
  ])('refuses %j as unsupported_parameter naming it', (body, name) => {
    const issue = firstIssue(body);
    expect(issue?.path).toBe(name);
    expect(issue?.code).toBe(UNSUPPORTED_PARAMETER);
    expect(issue?.message).toContain(`'${name}'`);
  });

  it('names every refused parameter in UNSUPPORTED_PARAMETER_NAMES', () => {
    expect([...UNSUPPORTED_PARAMETER_NAMES].sort()).toEqual(
      [
        'n',
        'logprobs',
        'top_logprobs',
        'tools',
        'tool_choice',
        'functions',
        'function_call',
        'parallel_tool_calls',
        'audio',
        'modalities',
        'prediction',
        'web_search_options',
      ].sort(),
    );
  });

  it('refuses tool-call history with a message that says tools are not supported', () => {
    const toolCall = {
      id: 'call_1',
      type: 'function',
      function: { name: 'weather', arguments: '{}' },
    };
    for (const [messages, path] of [
      [[...MESSAGES, { role: 'assistant', content: null, tool_calls: [toolCall] }], 'messages.1.tool_calls'],
      [[...MESSAGES, { role: 'tool', tool_call_id: 'call_1', content: 'sunny' }], 'messages.1.role'],
      [[...MESSAGES, { role: 'function', name: 'weather', content: 'sunny' }], 'messages.1.role'],
      [
        [...MESSAGES, { role: 'assistant', content: null, function_call: { name: 'f', arguments: '{}' } }],
        'messages.1.function_call',
      ],
    ] as const) {
      const issue = firstIssue({ messages });
      expect(issue?.path).toBe(path);
      expect(issue?.code).toBe(UNSUPPORTED_PARAMETER);
      expect(issue?.message).toMatch(/tools are not supported/);
    }
  });
});

describe('aggregatorOptionsOf and maxTokensOf', () => {
  it('maps the sampling options to the aggregator options, a single stop as a list', () => {
    const body = chatCompletionSchema.parse({
      model: 'moa',
      messages: MESSAGES,
      temperature: 0,
      top_p: 0.5,
      seed: 42,
      stop: 'END',
      presence_penalty: 0.25,
      frequency_penalty: -0.5,
      response_format: { type: 'json_object' },
    });
    expect(aggregatorOptionsOf(body)).toEqual({
      temperature: 0,
      topP: 0.5,
      seed: 42,
      stop: ['END'],
      presencePenalty: 0.25,
      frequencyPenalty: -0.5,
      responseFormat: { type: 'json_object' },
    });
  });

  it('is undefined without options; a text format is the default and is not sent', () => {
    expect(aggregatorOptionsOf({})).toBeUndefined();
    expect(
      aggregatorOptionsOf({ response_format: { type: 'text' }, stop: [], temperature: null }),
    ).toBeUndefined();
  });

  it('takes max_completion_tokens over max_tokens', () => {
    expect(maxTokensOf({ max_tokens: 10, max_completion_tokens: 20 })).toBe(20);
    expect(maxTokensOf({ max_tokens: 10 })).toBe(10);
    expect(maxTokensOf({ max_tokens: null })).toBeUndefined();
  });
});

describe('aggregator options in job data', () => {
  const config = parseMoaConfig({
    providers: { fake: { baseURL: 'http://127.0.0.1:1/v1' } },
    presets: { duo: { layers: [[{ model: 'fake/alpha' }]], aggregator: { model: 'fake/aggregator' } } },
    defaultPreset: 'duo',
  });
  const schemas = jobDataSchemasFor(config);
  const options = {
    temperature: 0.1,
    topP: 0.9,
    seed: 7,
    stop: ['\n\n'],
    presencePenalty: 1,
    frequencyPenalty: 1,
    responseFormat: {
      type: 'json_schema' as const,
      json_schema: { name: 'x', schema: { type: 'object' }, strict: true },
    },
  };

  it('travel in the request data and pass the worker schema', () => {
    const data = newRequestData({
      tenant: 'default',
      preset: config.presets.duo!,
      messages: [{ role: 'user', content: 'Hello?' }],
      source: 'chat',
      aggregatorOptions: options,
    });
    expect(data.aggregatorOptions).toEqual(options);
    expect(schemas.request.parse(data).aggregatorOptions).toEqual(options);
    const without = newRequestData({
      tenant: 'default',
      preset: config.presets.duo!,
      messages: [{ role: 'user', content: 'Hello?' }],
      source: 'chat',
    });
    expect(without).not.toHaveProperty('aggregatorOptions');
  });

  it('are refused out of range, and never travel on a call job (its aggregator reads them from its request)', () => {
    const base = newRequestData({
      tenant: 'default',
      preset: config.presets.duo!,
      messages: [{ role: 'user', content: 'Hello?' }],
      source: 'chat',
    });
    expect(requestJobDataSchema.safeParse({ ...base, aggregatorOptions: { temperature: 3 } }).success).toBe(
      false,
    );
    expect(
      requestJobDataSchema.safeParse({ ...base, aggregatorOptions: { stop: ['a', 'b', 'c', 'd', 'e'] } })
        .success,
    ).toBe(false);
    const call = {
      requestId: base.requestId,
      presetName: 'duo',
      agentIndex: 0,
      agent: config.presets.duo!.aggregator,
      layer: 2,
      role: 'aggregator',
      aggregatorOptions: { temperature: 0 },
    };
    expect(schemas.call.parse(call)).not.toHaveProperty('aggregatorOptions');
  });
});

describe('the moa object: per-request policy overrides', () => {
  const config = parseMoaConfig({
    providers: { p: { baseURL: 'http://127.0.0.1:1/v1' } },
    presets: {
      capped: {
        layers: [[{ model: 'p/a' }]],
        aggregator: { model: 'p/b' },
        maxCostUsd: 0.05,
        earlyStop: { minAgreement: 0.9 },
      },
    },
  });
  const preset = config.presets.capped!;

  it('names the field of a bad value', () => {
    expect(firstIssue({ moa: { max_cost_usd: -1 } })).toMatchObject({
      path: 'moa.max_cost_usd',
      message: 'must be a number of USD greater than 0, or null',
    });
    expect(firstIssue({ moa: { early_stop: { min_agreement: 2 } } })).toMatchObject({
      path: 'moa.early_stop.min_agreement',
    });
    expect(firstIssue({ moa: 'cheap' })).toMatchObject({
      path: 'moa',
      message: 'must be an object with max_cost_usd and/or early_stop',
    });
  });

  it('replaces a policy with a value, turns it off with null, keeps it when absent', () => {
    const parse = (moa: unknown) =>
      policyOverridesOf(chatCompletionSchema.parse({ model: 'capped', messages: MESSAGES, moa }).moa);
    expect(withPolicies(preset, parse({ max_cost_usd: 0.01 }))).toMatchObject({
      maxCostUsd: 0.01,
      earlyStop: { minAgreement: 0.9 },
    });
    const off = withPolicies(preset, parse({ max_cost_usd: null, early_stop: null }));
    expect(off).not.toHaveProperty('maxCostUsd');
    expect(off).not.toHaveProperty('earlyStop');
    expect(withPolicies(preset, parse({ early_stop: { min_agreement: 0.5 } })).earlyStop).toEqual({
      minAgreement: 0.5,
    });
    expect(parse({})).toBeUndefined();
    expect(parse(null)).toBeUndefined();
    expect(withPolicies(preset, parse(undefined))).toBe(preset);
  });

  it("puts the request's policies on its preset snapshot, which job data accepts", () => {
    const data = newRequestData({
      tenant: 'default',
      preset,
      messages: [{ role: 'user', content: 'hi' }],
      source: 'jobs',
      policies: { maxCostUsd: null, earlyStop: { minAgreement: 0.3 } },
    });
    expect(data.preset).not.toHaveProperty('maxCostUsd');
    expect(data.preset.earlyStop).toEqual({ minAgreement: 0.3 });
    expect(jobDataSchemasFor(config).request.parse(data).preset.earlyStop).toEqual({ minAgreement: 0.3 });
  });
});
