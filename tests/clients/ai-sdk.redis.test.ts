import { createOpenAI } from '@ai-sdk/openai';
import { createOpenAICompatible } from '@ai-sdk/openai-compatible';
import { APICallError, generateObject, generateText, RetryError, streamText } from 'ai';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { z } from 'zod';
import { startMoaStack, type MoaStack } from '../support/moa-stack.js';

/**
 * The Vercel AI SDK against the real stack: `@ai-sdk/openai`'s default
 * model (the Responses API) and `@ai-sdk/openai-compatible` (chat completions).
 */
describe('AI SDK', () => {
  let stack: MoaStack;
  let openai: ReturnType<typeof createOpenAI>;
  let compatible: ReturnType<typeof createOpenAICompatible>;

  beforeAll(async () => {
    stack = await startMoaStack({ name: 'clients-ai-sdk', redisUrl: inject('redisUrl'), workers: 1 });
    const baseURL = `${await stack.listen()}/v1`;
    openai = createOpenAI({ baseURL, apiKey: 'unused' });
    compatible = createOpenAICompatible({
      name: 'moa',
      baseURL,
      apiKey: 'unused',
      supportsStructuredOutputs: true,
    });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  const recipe = z.object({ name: z.string(), steps: z.array(z.string()) });

  describe("@ai-sdk/openai: openai('<preset>') on the Responses API", () => {
    it('generateText: the text, a stop finish and usage', async () => {
      const result = await generateText({
        model: openai('three'),
        system: 'Be brief.',
        prompt: 'Say hello.',
      });
      expect(result.text.length).toBeGreaterThan(0);
      expect(result.finishReason).toBe('stop');
      expect(result.usage.totalTokens).toBeGreaterThan(0);
      expect(result.response.id).toMatch(/^resp_/);
    });

    it('generateText: a cut-off answer finishes on length', async () => {
      const result = await generateText({
        model: openai('three'),
        prompt: 'Write an essay.',
        maxOutputTokens: 16,
      });
      expect(result.finishReason).toBe('length');
    });

    it('streamText: the streamed text is the whole text', async () => {
      const result = streamText({ model: openai('three'), prompt: 'Stream a story.' });
      let streamed = '';
      for await (const part of result.textStream) streamed += part;
      expect(streamed.length).toBeGreaterThan(0);
      expect(await result.text).toBe(streamed);
      expect(await result.finishReason).toBe('stop');
      expect((await result.usage).totalTokens).toBeGreaterThan(0);
    });

    it('generateObject: a zod schema sent as text.format json_schema to the aggregator', async () => {
      stack.fake.requests.length = 0;
      const { object } = await generateObject({
        model: openai('three'),
        schema: recipe,
        prompt: 'A recipe.',
      });
      expect(recipe.parse(object)).toEqual(object);
      const aggregator = stack.fake.requests.find((request) => request.model === 'aggregator');
      expect(aggregator?.responseFormat).toMatchObject({ type: 'json_schema' });
    });
  });

  describe('@ai-sdk/openai-compatible: chat completions', () => {
    it('generateText', async () => {
      const result = await generateText({ model: compatible('three'), prompt: 'Say hello.' });
      expect(result.text.length).toBeGreaterThan(0);
      expect(result.finishReason).toBe('stop');
      expect(result.usage.totalTokens).toBeGreaterThan(0);
    });

    it('streamText', async () => {
      const result = streamText({ model: compatible('three'), prompt: 'Stream a story.' });
      let streamed = '';
      for await (const part of result.textStream) streamed += part;
      expect(streamed.length).toBeGreaterThan(0);
      expect(await result.text).toBe(streamed);
      expect(await result.finishReason).toBe('stop');
    });

    it('generateObject', async () => {
      const { object } = await generateObject({
        model: compatible('three'),
        schema: recipe,
        prompt: 'A recipe.',
      });
      expect(recipe.parse(object)).toEqual(object);
    });

    it('a deterministic failure costs one run at the default maxRetries: its retries get the remembered answer', async () => {
      stack.fake.setBehaviour('dead', { failStatus: 400 });
      stack.fake.requests.length = 0;
      // The AI SDK retries any 5xx twice, whatever x-should-retry says.
      const retried = await generateText({ model: compatible('all-dead'), prompt: 'Hello, AI SDK?' }).catch(
        (caught: unknown) => caught,
      );
      expect(RetryError.isInstance(retried)).toBe(true);
      const errors = (retried as RetryError).errors;
      expect(errors).toHaveLength(3);
      for (const error of errors) {
        expect(APICallError.isInstance(error)).toBe(true);
        expect(error).toMatchObject({ statusCode: 502, responseHeaders: { 'x-should-retry': 'false' } });
      }
      // The first attempt ran; the two retries were answered from its failure, naming its job.
      const [first, ...retries] = errors as APICallError[];
      const jobId = first?.responseHeaders?.['x-moa-job-id'];
      expect(jobId).toMatch(/^job_/);
      expect(first?.responseHeaders?.['x-moa-replayed-from']).toBeUndefined();
      for (const retry of retries) expect(retry.responseHeaders?.['x-moa-replayed-from']).toBe(jobId);
      // Exactly one MoA run: its two proposer calls.
      expect(stack.fake.requests).toHaveLength(2);
    });
  });
});
