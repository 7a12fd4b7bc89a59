import OpenAI from 'openai';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { fixedAnswer } from './deterministic-answer.js';
import { createFakeProvider, type FakeProvider } from './fake-provider.js';
import { jsonAnswerContent, minimalInstance } from './structured-answer.js';

const started: FakeProvider[] = [];
afterEach(async () => {
  await Promise.all(started.splice(0).map((provider) => provider.close()));
});

async function start(): Promise<{ provider: FakeProvider; client: OpenAI }> {
  const provider = await createFakeProvider();
  started.push(provider);
  return { provider, client: new OpenAI({ baseURL: provider.url, apiKey: 'test', maxRetries: 0 }) };
}

const messages = [{ role: 'user' as const, content: 'Describe a city.' }];

/** Schemas as structured-output clients make them: from zod, through JSON Schema. */
const SCHEMAS = {
  flat: z.object({ name: z.string(), population: z.number().int().min(1), capital: z.boolean() }),
  nested: z.object({
    city: z.object({ name: z.string().min(3).max(5), tags: z.array(z.string()).min(2) }),
    kind: z.enum(['town', 'city']),
    note: z.string().nullable(),
    optional: z.string().optional(),
  }),
  bounds: z.object({
    ratio: z.number().gt(0).lt(1),
    negative: z.number().int().max(-3),
    when: z.iso.datetime(),
    mail: z.email(),
    id: z.uuid(),
    literal: z.literal('fixed'),
  }),
  union: z.object({ value: z.union([z.number(), z.string()]), items: z.tuple([z.string(), z.number()]) }),
};

describe('minimalInstance', () => {
  it.each(Object.entries(SCHEMAS))(
    'builds an instance that validates against the %s schema',
    (_name, schema) => {
      const jsonSchema = z.toJSONSchema(schema);
      const instance = minimalInstance(jsonSchema, 'some answer text');
      expect(schema.safeParse(instance).error).toBeUndefined();
    },
  );

  it('keeps required properties only and fills strings with the text', () => {
    expect(minimalInstance(z.toJSONSchema(SCHEMAS.nested), 'abc def')).toEqual({
      city: { name: 'abc d', tags: ['abc def', 'abc def'] },
      kind: 'town',
      note: 'abc def',
    });
  });

  it('follows local $refs, and ends a recursive one', () => {
    const node: z.ZodType = z.lazy(() => z.object({ label: z.string(), children: z.array(node) }));
    const schema = z.object({ root: node });
    expect(schema.safeParse(minimalInstance(z.toJSONSchema(schema), 'x')).error).toBeUndefined();
    expect(minimalInstance({ $ref: '#' }, 'x')).toBeNull();
  });
});

describe('the fake provider with response_format and max_tokens', () => {
  it('answers json_object with a JSON object', async () => {
    const { client } = await start();
    const completion = await client.chat.completions.create({
      model: 'm',
      messages,
      response_format: { type: 'json_object' },
    });
    const content = completion.choices[0]!.message.content!;
    expect(JSON.parse(content)).toEqual({ answer: expect.stringMatching(/^m answer [0-9a-f]{8}: /) });
    expect(completion.choices[0]!.finish_reason).toBe('stop');
  });

  it('answers json_schema with an instance of the schema, streamed too, and records what was asked', async () => {
    const { provider, client } = await start();
    const responseFormat = {
      type: 'json_schema' as const,
      json_schema: {
        name: 'city',
        schema: z.toJSONSchema(SCHEMAS.flat) as Record<string, unknown>,
        strict: true,
      },
    };
    const completion = await client.chat.completions.create({
      model: 'm',
      messages,
      response_format: responseFormat,
    });
    const plain = completion.choices[0]!.message.content!;
    expect(SCHEMAS.flat.parse(JSON.parse(plain))).toEqual({
      name: expect.any(String),
      population: 1,
      capital: true,
    });

    const stream = await client.chat.completions.create({
      model: 'm',
      messages,
      response_format: responseFormat,
      stream: true,
    });
    let streamed = '';
    for await (const chunk of stream) streamed += chunk.choices[0]?.delta.content ?? '';
    expect(streamed).toBe(plain);
    expect(provider.requests[0]!.responseFormat).toEqual(responseFormat);
  });

  it('cuts any answer at max_tokens words with finish_reason length: scripted content and JSON too', async () => {
    const { provider, client } = await start();
    provider.script('m', { content: 'one two  three four' });
    const scripted = await client.chat.completions.create({ model: 'm', messages, max_tokens: 2 });
    expect(scripted.choices[0]!.message.content).toBe('one two');
    expect(scripted.choices[0]!.finish_reason).toBe('length');
    expect(scripted.usage!.completion_tokens).toBe(2);

    provider.script('m', { content: 'one two' });
    const whole = await client.chat.completions.create({ model: 'm', messages, max_tokens: 2 });
    expect(whole.choices[0]!.message.content).toBe('one two');
    expect(whole.choices[0]!.finish_reason).toBe('stop');

    const json = await client.chat.completions.create({
      model: 'm',
      messages,
      max_tokens: 3,
      response_format: { type: 'json_object' },
    });
    expect(json.choices[0]!.finish_reason).toBe('length');
    expect(() => JSON.parse(json.choices[0]!.message.content!)).toThrow();
  });

  it('records the sampling parameters sent, and refuses them out of range as OpenAI does', async () => {
    const { provider, client } = await start();
    await client.chat.completions.create({
      model: 'm',
      messages,
      temperature: 0,
      top_p: 0.25,
      seed: 9,
      stop: 'END',
      presence_penalty: 1,
      frequency_penalty: -1,
    });
    expect(provider.requests[0]).toMatchObject({
      temperature: 0,
      topP: 0.25,
      seed: 9,
      stop: ['END'],
      presencePenalty: 1,
      frequencyPenalty: -1,
    });
    for (const bad of [
      { temperature: 2.5 },
      { top_p: 2 },
      { stop: ['a', 'b', 'c', 'd', 'e'] },
      { seed: 0.5 },
    ]) {
      const error = await client.chat.completions
        .create({ model: 'm', messages, ...bad } as OpenAI.Chat.ChatCompletionCreateParamsNonStreaming)
        .catch((caught: unknown) => caught);
      expect((error as { status?: number }).status, JSON.stringify(bad)).toBe(400);
    }
  });
});

describe('fixedAnswer and jsonAnswerContent', () => {
  it('keeps the spacing of the words it keeps', () => {
    expect(fixedAnswer(' a\n b  c ', 2)).toEqual({
      content: ' a\n b',
      completionTokens: 2,
      finishReason: 'length',
    });
    expect(fixedAnswer('a b', 5)).toEqual({ content: 'a b', completionTokens: 2, finishReason: 'stop' });
  });

  it('gives an object even for a json_schema without a schema', () => {
    expect(
      JSON.parse(
        jsonAnswerContent({ type: 'json_schema', name: 'x', schema: undefined, strict: false }, 't'),
      ),
    ).toEqual({});
  });
});
