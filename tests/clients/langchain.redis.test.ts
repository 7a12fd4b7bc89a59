import { ChatOpenAI } from '@langchain/openai';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { z } from 'zod';
import { startMoaStack, type MoaStack } from '../support/moa-stack.js';

/** LangChain JS (`@langchain/openai`'s `ChatOpenAI`) against the real stack. */
describe('LangChain ChatOpenAI', () => {
  let stack: MoaStack;
  let baseURL: string;
  const chat = (options: ConstructorParameters<typeof ChatOpenAI>[0] = {}) =>
    new ChatOpenAI({
      model: 'three',
      apiKey: 'unused',
      configuration: { baseURL },
      maxRetries: 0,
      ...options,
    });

  beforeAll(async () => {
    stack = await startMoaStack({ name: 'clients-langchain', redisUrl: inject('redisUrl'), workers: 1 });
    baseURL = `${await stack.listen()}/v1`;
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('invoke: the answer, its finish reason and token usage', async () => {
    const message = await chat().invoke([
      ['system', 'Be brief.'],
      ['human', 'Say hello.'],
    ]);
    expect(typeof message.content).toBe('string');
    expect(String(message.content).length).toBeGreaterThan(0);
    expect(message.response_metadata.finish_reason).toBe('stop');
    expect(message.usage_metadata?.total_tokens).toBeGreaterThan(0);
  });

  it('invoke with maxTokens: finish_reason length', async () => {
    const message = await chat({ maxTokens: 16 }).invoke('Write an essay.');
    expect(message.response_metadata.finish_reason).toBe('length');
  });

  it('stream: the chunks make up the answer', async () => {
    const chunks: string[] = [];
    for await (const chunk of await chat().stream('Stream a story.')) chunks.push(String(chunk.content));
    expect(chunks.filter((chunk) => chunk.length > 0).length).toBeGreaterThan(1);
    expect(chunks.join('').length).toBeGreaterThan(0);
  });

  it('batch: one answer per input, in order', async () => {
    const inputs = ['First question?', 'Second question?', 'Third question?'];
    const answers = await chat().batch(inputs);
    expect(answers).toHaveLength(3);
    for (const answer of answers) expect(String(answer.content).length).toBeGreaterThan(0);
  });

  const person = z.object({ name: z.string(), age: z.number() });

  it('withStructuredOutput (jsonSchema): a parsed object, the schema sent to the aggregator', async () => {
    stack.fake.requests.length = 0;
    const structured = chat().withStructuredOutput(person, { method: 'jsonSchema', name: 'person' });
    const result = await structured.invoke('Invent a person.');
    expect(person.parse(result)).toEqual(result);
    const aggregator = stack.fake.requests.find((request) => request.model === 'aggregator');
    expect(aggregator?.responseFormat).toMatchObject({
      type: 'json_schema',
      json_schema: { name: 'person' },
    });
  });

  it('withStructuredOutput (jsonMode): json_object sent to the aggregator, its JSON parsed', async () => {
    stack.fake.requests.length = 0;
    // json_object carries no schema: the fake answers {"answer": "..."}, as a model asked for JSON may.
    const answer = z.object({ answer: z.string() });
    const structured = chat().withStructuredOutput(answer, { method: 'jsonMode' });
    const result = await structured.invoke('Answer as JSON with an "answer" key.');
    expect(answer.parse(result)).toEqual(result);
    const aggregator = stack.fake.requests.find((request) => request.model === 'aggregator');
    expect(aggregator?.responseFormat).toEqual({ type: 'json_object' });
  });

  it("a deterministic failure costs one run whatever maxRetries: LangChain's retries get the remembered answer", async () => {
    stack.fake.setBehaviour('dead', { failStatus: 400 });
    stack.fake.requests.length = 0;
    // LangChain's own caller retries a 5xx whatever x-should-retry says: count what it sends.
    const answers: { replayedFrom: string | null; jobId: string | null }[] = [];
    const countingFetch: typeof fetch = async (input, init) => {
      const response = await fetch(input, init);
      answers.push({
        replayedFrom: response.headers.get('x-moa-replayed-from'),
        jobId: response.headers.get('x-moa-job-id'),
      });
      return response;
    };
    await expect(
      chat({ maxRetries: 2, model: 'all-dead', configuration: { baseURL, fetch: countingFetch } }).invoke(
        'Hello, LangChain?',
      ),
    ).rejects.toMatchObject({ status: 502, code: 'too_few_proposers' });
    expect(answers).toHaveLength(3);
    const jobId = answers[0]?.jobId;
    expect(jobId).toMatch(/^job_/);
    expect(answers.map((answer) => answer.replayedFrom)).toEqual([null, jobId, jobId]);
    // Exactly one MoA run: its two proposer calls.
    expect(stack.fake.requests).toHaveLength(2);
  });

  it('withStructuredOutput by function calling is refused clearly: tools are not supported', async () => {
    const structured = chat().withStructuredOutput(person, { method: 'functionCalling' });
    await expect(structured.invoke('Invent a person.')).rejects.toThrow(/tools are not supported/);
  });
});
