import type { APIError } from 'openai';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startMoaStack, type MoaStack } from '../support/moa-stack.js';

/** The openai SDK's Responses API (`client.responses.create` and `.stream`) against the real stack. */
describe('openai SDK: responses', () => {
  let stack: MoaStack;
  let client: OpenAI;
  let baseUrl: string;

  beforeAll(async () => {
    stack = await startMoaStack({ name: 'clients-responses', redisUrl: inject('redisUrl'), workers: 1 });
    // A deterministic failure: the dead model's provider refuses (a 4xx is not retried).
    stack.fake.setBehaviour('dead', { failStatus: 400 });
    baseUrl = `${await stack.listen()}/v1`;
    client = new OpenAI({ baseURL: baseUrl, apiKey: 'unused', maxRetries: 0 });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('answers a string input with instructions: output_text, usage summed over every call, the moa extension', async () => {
    stack.fake.requests.length = 0;
    const response = await client.responses.create({
      model: 'three',
      instructions: 'Answer briefly.',
      input: 'What is a mixture of agents?',
      metadata: { run: 'r1' },
    });
    expect(response.object).toBe('response');
    expect(response.id).toMatch(/^resp_/);
    expect(response.status).toBe('completed');
    expect(response.model).toBe('three');
    expect(response.metadata).toEqual({ run: 'r1' });
    expect(response.output_text.length).toBeGreaterThan(0);
    expect(response.output).toHaveLength(1);
    expect(response.output[0]).toMatchObject({ type: 'message', role: 'assistant', status: 'completed' });
    const moa = (
      response as unknown as {
        moa: { usage: { prompt_tokens: number; completion_tokens: number }; layers: unknown[] };
      }
    ).moa;
    expect(moa.layers.length).toBe(3);
    expect(response.usage).toMatchObject({
      input_tokens: moa.usage.prompt_tokens,
      output_tokens: moa.usage.completion_tokens,
      total_tokens: moa.usage.prompt_tokens + moa.usage.completion_tokens,
      input_tokens_details: { cached_tokens: 0 },
      output_tokens_details: { reasoning_tokens: 0 },
    });
    // Every call of the run was made: 3 + 3 proposers and the aggregator.
    expect(stack.fake.requests).toHaveLength(7);
    const aggregator = stack.fake.requests.find((request) => request.model === 'aggregator');
    expect(aggregator?.messages.map((message) => message.role)).toContain('system');
    expect(JSON.stringify(aggregator?.messages)).toContain('Answer briefly.');
  });

  it('takes a list of messages with input_text parts, and applies max_output_tokens and text.format to the aggregator', async () => {
    stack.fake.requests.length = 0;
    const response = await client.responses.create({
      model: 'three',
      input: [
        { role: 'developer', content: 'Be precise.' },
        {
          role: 'user',
          content: [
            { type: 'input_text', text: 'Name a colour ' },
            { type: 'input_text', text: 'as JSON.' },
          ],
        },
      ],
      temperature: 0.3,
      top_p: 0.9,
      text: {
        format: {
          type: 'json_schema',
          name: 'colour',
          strict: true,
          schema: {
            type: 'object',
            properties: { colour: { type: 'string' } },
            required: ['colour'],
            additionalProperties: false,
          },
        },
      },
    });
    expect(response.status).toBe('completed');
    expect(JSON.parse(response.output_text)).toEqual({ colour: expect.any(String) });
    const aggregator = stack.fake.requests.find((request) => request.model === 'aggregator');
    expect(aggregator?.temperature).toBe(0.3);
    expect(aggregator?.responseFormat).toMatchObject({
      type: 'json_schema',
      json_schema: { name: 'colour', strict: true, schema: { required: ['colour'] } },
    });
    const user = aggregator?.messages.filter((message) => message.role === 'user').at(-1);
    expect(JSON.stringify(user)).toContain('Name a colour as JSON.');
    // Proposers keep their preset's sampling and format.
    const proposer = stack.fake.requests.find((request) => request.model === 'alpha');
    expect(proposer?.responseFormat).toBeUndefined();
  });

  it('is incomplete with max_output_tokens as the reason when the aggregator is cut off', async () => {
    const response = await client.responses.create({
      model: 'three',
      input: 'Write a long essay.',
      max_output_tokens: 16,
    });
    expect(response.status).toBe('incomplete');
    expect(response.incomplete_details).toEqual({ reason: 'max_output_tokens' });
    expect(response.max_output_tokens).toBe(16);
  });

  it('streams the event sequence the SDK expects, and its final response matches the deltas', async () => {
    const stream = client.responses.stream({ model: 'three', input: 'Stream me something.' });
    const types: string[] = [];
    const sequence: number[] = [];
    let deltas = '';
    for await (const event of stream) {
      types.push(event.type);
      sequence.push(event.sequence_number);
      if (event.type === 'response.output_text.delta') deltas += event.delta;
    }
    const final = await stream.finalResponse();
    expect(final.status).toBe('completed');
    expect(final.output_text).toBe(deltas);
    expect(sequence).toEqual(sequence.map((_, index) => index));
    const distinct = types.filter((type, index) => type !== types[index - 1]);
    expect(distinct).toEqual([
      'response.created',
      'response.in_progress',
      'response.output_item.added',
      'response.content_part.added',
      'response.output_text.delta',
      'response.output_text.done',
      'response.content_part.done',
      'response.output_item.done',
      'response.completed',
    ]);
    expect(final.usage?.total_tokens).toBeGreaterThan(0);
  });

  it('streams a cut-off answer ending with response.incomplete', async () => {
    const stream = client.responses.stream({
      model: 'three',
      input: 'Write a long essay.',
      max_output_tokens: 16,
    });
    const types: string[] = [];
    for await (const event of stream) types.push(event.type);
    expect(types.at(-1)).toBe('response.incomplete');
    const final = await stream.finalResponse();
    expect(final.status).toBe('incomplete');
    expect(final.incomplete_details).toEqual({ reason: 'max_output_tokens' });
    expect(final.output_text.length).toBeGreaterThan(0);
  });

  it('streams a failed run as response.failed with the job error', async () => {
    const stream = await client.responses.create({ model: 'all-dead', input: 'Hello?', stream: true });
    const types: string[] = [];
    let failed: OpenAI.Responses.Response | undefined;
    for await (const event of stream) {
      types.push(event.type);
      if (event.type === 'response.failed') failed = event.response;
    }
    expect(types.at(-1)).toBe('response.failed');
    expect(failed?.status).toBe('failed');
    expect(failed?.error?.code).toBe('too_few_proposers');
  });

  it('answers a failed run with 502 and x-should-retry: false, so the SDK does not run it again', async () => {
    const retrying = new OpenAI({ baseURL: baseUrl, apiKey: 'unused' });
    stack.fake.requests.length = 0;
    const error = await retrying.responses
      .create({ model: 'all-dead', input: 'Hello?' })
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(OpenAI.InternalServerError);
    expect((error as APIError).status).toBe(502);
    expect((error as APIError).code).toBe('too_few_proposers');
    // One run: its two proposers, each called once (a 4xx is not retried); no second run.
    expect(stack.fake.requests).toHaveLength(2);
  });

  it('refuses what it cannot honour with 400 unsupported_parameter naming it, and unknown models with 404', async () => {
    const refused: [string, Record<string, unknown>][] = [
      ['previous_response_id', { previous_response_id: 'resp_x' }],
      ['store', { store: true }],
      ['tools', { tools: [{ type: 'function', name: 'f', parameters: {} }] }],
      ['tool_choice', { tool_choice: 'required' }],
      ['background', { background: true }],
      ['reasoning', { reasoning: { effort: 'low' } }],
      ['include', { include: ['message.output_text.logprobs'] }],
      ['conversation', { conversation: 'conv_1' }],
    ];
    for (const [name, extra] of refused) {
      const error = await client.responses
        .create({
          model: 'three',
          input: 'Hi',
          ...extra,
        } as OpenAI.Responses.ResponseCreateParamsNonStreaming)
        .catch((caught: unknown) => caught);
      expect(error, name).toBeInstanceOf(OpenAI.BadRequestError);
      expect((error as APIError).code, name).toBe('unsupported_parameter');
      expect((error as APIError).param, name).toBe(name);
    }
    // store: false is what a stateless server does anyway.
    await expect(
      client.responses.create({ model: 'three', input: 'Hi', store: false }),
    ).resolves.toMatchObject({
      status: 'completed',
    });
    const missing = await client.responses
      .create({ model: 'nope', input: 'Hi' })
      .catch((caught: unknown) => caught);
    expect(missing).toBeInstanceOf(OpenAI.NotFoundError);
    expect((missing as APIError).code).toBe('model_not_found');
    const badTemperature = await client.responses
      .create({ model: 'three', input: 'Hi', temperature: 5 })
      .catch((caught: unknown) => caught);
    expect(badTemperature).toBeInstanceOf(OpenAI.BadRequestError);
    expect((badTemperature as APIError).param).toBe('temperature');
  });
});
