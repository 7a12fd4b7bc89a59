import { TRUNCATED_REFERENCE_NOTE } from '@moa-queue/moa';
import type { RecordedRequest } from '@moa-queue/fake-provider';
import OpenAI, { APIError, BadRequestError, toFile } from 'openai';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { z } from 'zod';
import { metricsPortOf, parseMetrics, startMoaStack, sumOf, type MoaStack } from './support/moa-stack.js';

/*
 * The OpenAI request parameters, finish_reason and retry hints end to end:
 * the real `openai` SDK against the in-process API on a loopback socket,
 * worker processes and the fake provider recording what each call was sent.
 */

const MESSAGES = [{ role: 'user' as const, content: 'Describe the best queue in JSON.' }];

/** Keys of a recorded request that the request's options set (temperature is the preset's otherwise). */
const OPTION_KEYS = [
  'topP',
  'seed',
  'stop',
  'presencePenalty',
  'frequencyPenalty',
  'responseFormat',
] as const;

const ANSWER_SCHEMA = z.object({
  title: z.string(),
  score: z.number().int().min(1),
  tags: z.array(z.string()),
});

describe('OpenAI request parameters, finish_reason and retry hints', () => {
  let stack: MoaStack;
  let baseUrl: string;
  /** The SDK as users have it: default retries (2). */
  let client: OpenAI;

  beforeAll(async () => {
    stack = await startMoaStack({
      name: 'openai-parameters',
      redisUrl: inject('redisUrl'),
      workers: 2,
      configure: (file) => ({
        ...file,
        providers: {
          ...(file.providers as Record<string, unknown>),
          // The fake again, without call retries: one provider call per agent and run.
          once: {
            baseURL: (file.providers as { fake: { baseURL: string } }).fake.baseURL,
            apiKeyEnv: 'FAKE_PROVIDER_API_KEY',
            maxAttempts: 1,
          },
        },
        presets: {
          ...(file.presets as Record<string, unknown>),
          // The second proposer's answers (40 words) are cut at 3 tokens.
          capped: {
            layers: [[{ model: 'fake/alpha' }, { model: 'fake/short', maxTokens: 3 }]],
            aggregator: { model: 'fake/aggregator' },
          },
          refused: {
            layers: [[{ model: 'once/bad-request' }, { model: 'once/retired' }]],
            aggregator: { model: 'once/final' },
          },
          'refused-aggregator': {
            layers: [[{ model: 'once/good' }]],
            aggregator: { model: 'once/bad-request' },
          },
          flaky: {
            layers: [[{ model: 'once/flaky' }]],
            aggregator: { model: 'once/final' },
          },
        },
      }),
    });
    stack.fake.setBehaviour('bad-request', { failStatus: 400 });
    stack.fake.setBehaviour('retired', { failStatus: 404 });
    baseUrl = await stack.listen();
    client = new OpenAI({ baseURL: `${baseUrl}/v1`, apiKey: 'unused' });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  /** The provider requests of one MoA request, found by a unique prompt. */
  const requestsFor = (prompt: string): RecordedRequest[] =>
    stack.fake.requests.filter((recorded) => recorded.messages.some((message) => message.content === prompt));

  describe('request parameters', () => {
    it('sends sampling parameters and response_format to the aggregator call only; the answer follows the schema', async () => {
      const prompt = 'Rate this queue, as JSON. (chat)';
      const responseFormat = {
        type: 'json_schema' as const,
        json_schema: {
          name: 'rating',
          schema: z.toJSONSchema(ANSWER_SCHEMA) as Record<string, unknown>,
          strict: true,
        },
      };
      const completion = await client.chat.completions.create({
        model: 'three',
        messages: [{ role: 'user', content: prompt }],
        temperature: 0.1,
        top_p: 0.5,
        seed: 7,
        stop: ['END', 'STOP'],
        presence_penalty: 0.5,
        frequency_penalty: -0.25,
        response_format: responseFormat,
      });
      const content = completion.choices[0]!.message.content!;
      expect(ANSWER_SCHEMA.safeParse(JSON.parse(content)).success).toBe(true);
      expect(completion.choices[0]!.finish_reason).toBe('stop');

      const sent = requestsFor(prompt);
      expect(sent).toHaveLength(7);
      const [aggregator, ...proposers] = [
        sent.find((recorded) => recorded.model === 'aggregator')!,
        ...sent.filter((recorded) => recorded.model !== 'aggregator'),
      ];
      expect(aggregator).toMatchObject({
        temperature: 0.1,
        topP: 0.5,
        seed: 7,
        stop: ['END', 'STOP'],
        presencePenalty: 0.5,
        frequencyPenalty: -0.25,
        responseFormat,
      });
      expect(proposers).toHaveLength(6);
      for (const proposer of proposers) {
        // The preset's temperature (the default 0.7), and nothing of the request's.
        expect(proposer.temperature).toBe(0.7);
        for (const key of OPTION_KEYS) expect(proposer, `${proposer.model}.${key}`).not.toHaveProperty(key);
      }
    });

    it('POST /v1/jobs takes the same options and applies them the same way', async () => {
      const prompt = 'Rate this queue, as JSON. (job)';
      const created = await request(stack.app)
        .post('/v1/jobs')
        .send({
          preset: 'three',
          messages: [{ role: 'user', content: prompt }],
          temperature: 0,
          seed: 3,
          stop: 'END',
          response_format: { type: 'json_object' },
          max_tokens: 100,
        });
      expect(created.status).toBe(202);
      const job = await stack.waitFor(created.body.id);
      expect(job.status).toBe('completed');
      expect(JSON.parse(job.output!)).toEqual({ answer: expect.any(String) });
      const sent = requestsFor(prompt);
      const aggregator = sent.find((recorded) => recorded.model === 'aggregator')!;
      expect(aggregator).toMatchObject({
        temperature: 0,
        seed: 3,
        stop: ['END'],
        maxTokens: 100,
        responseFormat: { type: 'json_object' },
      });
      for (const proposer of sent.filter((recorded) => recorded.model !== 'aggregator')) {
        expect(proposer.temperature).toBe(0.7);
        expect(proposer.maxTokens).toBe(512);
        for (const key of OPTION_KEYS) expect(proposer).not.toHaveProperty(key);
      }
    });

    it('refuses out-of-range values naming the field and the bound, on chat completions and jobs', async () => {
      const cases: [Record<string, unknown>, string, RegExp][] = [
        [{ temperature: 5 }, 'temperature', /must be at most 2/],
        [{ top_p: -1 }, 'top_p', /must be at least 0/],
        [{ presence_penalty: 2.5 }, 'presence_penalty', /must be at most 2/],
        [{ frequency_penalty: -3 }, 'frequency_penalty', /must be at least -2/],
        [{ stop: ['a', 'b', 'c', 'd', 'e'] }, 'stop', /at most 4/],
        [{ seed: 1.5 }, 'seed', /must be an integer/],
        [{ max_tokens: 0 }, 'max_tokens', /must be at least 1/],
        [{ max_completion_tokens: 0 }, 'max_completion_tokens', /must be at least 1/],
        [{ n: 0 }, 'n', /must be at least 1/],
      ];
      for (const [options, param, message] of cases) {
        const chat = await request(stack.app)
          .post('/v1/chat/completions')
          .send({ model: 'three', messages: MESSAGES, ...options });
        expect([chat.status, chat.body.error?.param, chat.body.error?.code], JSON.stringify(options)).toEqual(
          [400, param, 'invalid_value'],
        );
        expect(chat.body.error.message).toMatch(message);
        expect(chat.headers['x-should-retry']).toBe('false');
        const job = await request(stack.app)
          .post('/v1/jobs')
          .send({ preset: 'three', messages: MESSAGES, ...options });
        expect([job.status, job.body.error?.param], JSON.stringify(options)).toEqual([400, param]);
        expect(job.body.error.message).toMatch(message);
      }
      expect(
        (
          await request(stack.app)
            .post('/v1/chat/completions')
            .send({ model: 'three', messages: MESSAGES, max_tokens: 0 })
        ).body.error.message,
      ).not.toMatch(/integer/);
    });

    it('refuses parameters it cannot honour, and tool-call history, as unsupported_parameter', async () => {
      const before = stack.fake.requests.length;
      for (const [options, param] of [
        [{ n: 2 }, 'n'],
        [{ logprobs: true }, 'logprobs'],
        [{ top_logprobs: 2 }, 'top_logprobs'],
        [{ tools: [{ type: 'function', function: { name: 'weather', parameters: {} } }] }, 'tools'],
        [{ tool_choice: 'required' }, 'tool_choice'],
        [{ functions: [{ name: 'weather' }] }, 'functions'],
        [{ function_call: 'auto' }, 'function_call'],
        [{ parallel_tool_calls: true }, 'parallel_tool_calls'],
        [{ audio: { voice: 'alloy', format: 'wav' } }, 'audio'],
        [{ modalities: ['text', 'audio'] }, 'modalities'],
        [{ prediction: { type: 'content', content: 'x' } }, 'prediction'],
        [{ web_search_options: {} }, 'web_search_options'],
      ] as const) {
        const error = await client.chat.completions
          .create({
            model: 'three',
            messages: MESSAGES,
            ...options,
          } as OpenAI.Chat.ChatCompletionCreateParamsNonStreaming)
          .catch((caught: unknown) => caught);
        expect(error, param).toBeInstanceOf(BadRequestError);
        expect([(error as APIError).code, (error as APIError).param]).toEqual([
          'unsupported_parameter',
          param,
        ]);
        expect((error as APIError).message).toContain(`'${param}'`);
        const job = await request(stack.app)
          .post('/v1/jobs')
          .send({ preset: 'three', messages: MESSAGES, ...options });
        expect([job.status, job.body.error?.code, job.body.error?.param]).toEqual([
          400,
          'unsupported_parameter',
          param,
        ]);
      }
      const history: OpenAI.Chat.ChatCompletionMessageParam[] = [
        ...MESSAGES,
        {
          role: 'assistant',
          content: null,
          tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'weather', arguments: '{}' } }],
        },
        { role: 'tool', tool_call_id: 'call_1', content: 'sunny' },
      ];
      const error = (await client.chat.completions
        .create({ model: 'three', messages: history })
        .catch((caught: unknown) => caught)) as APIError;
      expect(error).toBeInstanceOf(BadRequestError);
      expect(error.code).toBe('unsupported_parameter');
      expect(error.param).toBe('messages[1].tool_calls');
      expect(error.message).toMatch(/tools are not supported/);
      const toolOnly = (await client.chat.completions
        .create({ model: 'three', messages: [...MESSAGES, history[2]!] })
        .catch((caught: unknown) => caught)) as APIError;
      expect([toolOnly.code, toolOnly.param]).toEqual(['unsupported_parameter', 'messages[1].role']);
      expect(toolOnly.message).toMatch(/tools are not supported/);
      // Nothing was run.
      expect(stack.fake.requests.length).toBe(before);
    });
  });

  describe('finish_reason', () => {
    it("is the aggregator's: length when max_tokens cut the answer, plain and streamed", async () => {
      const plain = await client.chat.completions.create({
        model: 'three',
        messages: MESSAGES,
        max_tokens: 3,
      });
      expect(plain.choices[0]!.finish_reason).toBe('length');
      expect(plain.choices[0]!.message.content!.split(' ')).toHaveLength(3);
      const moa = (
        plain as unknown as { moa: { layers: { role: string; calls: { finish_reason: string }[] }[] } }
      ).moa;
      expect(moa.layers.at(-1)!.calls[0]!.finish_reason).toBe('length');
      // Proposers were not capped by the request: they stopped by themselves.
      for (const layer of moa.layers.slice(0, -1))
        expect(layer.calls.every((call) => call.finish_reason === 'stop')).toBe(true);

      const stream = await client.chat.completions.create({
        model: 'three',
        messages: MESSAGES,
        max_completion_tokens: 2,
        stream: true,
      });
      const reasons: (string | null)[] = [];
      let text = '';
      for await (const chunk of stream) {
        reasons.push(chunk.choices[0]?.finish_reason ?? null);
        text += chunk.choices[0]?.delta.content ?? '';
      }
      expect(reasons.filter((reason) => reason !== null)).toEqual(['length']);
      expect(text.split(' ')).toHaveLength(2);
    });

    it('marks a proposer cut by its maxTokens, and its reference says so to the aggregator', async () => {
      const prompt = 'Answer at length, please.';
      const job = await stack.waitFor(
        (await stack.submit({ preset: 'capped', messages: [{ role: 'user', content: prompt }] })).id,
      );
      expect(job.status).toBe('completed');
      const [proposers, aggregator] = job.layers;
      expect(proposers!.calls.map((call) => [call.model, call.finish_reason])).toEqual([
        ['fake/alpha', 'stop'],
        ['fake/short', 'length'],
      ]);
      expect(aggregator!.calls[0]!.finish_reason).toBe('stop');
      const system = requestsFor(prompt).find((recorded) => recorded.model === 'aggregator')!.messages[0]!
        .content;
      expect(system).toContain(`${proposers!.calls[1]!.output}\n\n${TRUNCATED_REFERENCE_NOTE}`);
      expect(system.split(TRUNCATED_REFERENCE_NOTE)).toHaveLength(2);

      const samples = (
        await Promise.all(
          stack.workers.map(async (worker) =>
            (await fetch(`http://127.0.0.1:${metricsPortOf(worker)}/metrics`)).text(),
          ),
        )
      ).flatMap(parseMetrics);
      expect(
        sumOf(samples, 'moa_llm_finish_reasons_total', { model: 'fake/short', reason: 'length' }),
      ).toBeGreaterThanOrEqual(1);
      expect(
        sumOf(samples, 'moa_llm_finish_reasons_total', { model: 'fake/alpha', reason: 'stop' }),
      ).toBeGreaterThanOrEqual(1);
      const reasons = new Set(
        samples
          .filter((sample) => sample.name === 'moa_llm_finish_reasons_total')
          .map((sample) => sample.labels.reason),
      );
      for (const reason of reasons) {
        expect(['stop', 'length', 'content_filter', 'tool_calls', 'other', 'unknown']).toContain(reason);
      }
    });

    it('batch lines carry the aggregator finish_reason, and are validated as chat completions are', async () => {
      const line = (customId: string, body: Record<string, unknown>) =>
        JSON.stringify({
          custom_id: customId,
          method: 'POST',
          url: '/v1/chat/completions',
          body: { model: 'three', messages: [{ role: 'user', content: `batch ${customId}` }], ...body },
        });
      const file = await client.files.create({
        file: await toFile(
          Buffer.from(
            [
              line('cut', { max_tokens: 4, temperature: 0.2, seed: 11 }),
              line('whole', {}),
              line('hot', { temperature: 5 }),
              line('logprobs', { logprobs: true }),
            ].join('\n'),
          ),
          'options.jsonl',
        ),
        purpose: 'batch',
      });
      let batch = await client.batches.create({
        input_file_id: file.id,
        endpoint: '/v1/chat/completions',
        completion_window: '24h',
      });
      const deadline = Date.now() + 60_000;
      while (!['completed', 'failed'].includes(batch.status) && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        batch = await client.batches.retrieve(batch.id);
      }
      expect(batch.status).toBe('completed');
      expect(batch.request_counts).toEqual({ total: 4, completed: 2, failed: 2 });
      const lines = async (id: string | null | undefined) =>
        (await (await client.files.content(id!)).text())
          .split('\n')
          .filter(Boolean)
          .map(
            (text) =>
              JSON.parse(text) as {
                custom_id: string;
                response: { body: OpenAI.Chat.ChatCompletion } | null;
                error: { code: string; message: string } | null;
              },
          );
      const output = new Map((await lines(batch.output_file_id)).map((entry) => [entry.custom_id, entry]));
      expect(output.get('cut')!.response!.body.choices[0]!.finish_reason).toBe('length');
      expect(output.get('whole')!.response!.body.choices[0]!.finish_reason).toBe('stop');
      const aggregator = requestsFor('batch cut').find((recorded) => recorded.model === 'aggregator')!;
      expect(aggregator).toMatchObject({ temperature: 0.2, seed: 11, maxTokens: 4 });
      const errors = new Map(
        (await lines(batch.error_file_id)).map((entry) => [entry.custom_id, entry.error]),
      );
      expect(errors.get('hot')).toEqual({
        code: 'invalid_request',
        message: 'Line 3: Invalid temperature: must be at most 2 (a number from 0 to 2)',
      });
      expect(errors.get('logprobs')).toMatchObject({ code: 'unsupported_parameter' });
      expect(errors.get('logprobs')!.message).toContain("'logprobs'");
    });
  });

  describe('retry hints: an SDK at its default maxRetries never re-pays a deterministic failure', () => {
    /** Provider calls made for `models` since `since`. */
    const callsTo = (models: string[], since: number) =>
      stack.fake.requests.filter(
        (recorded) => recorded.receivedAt >= since && models.includes(recorded.model),
      );

    it('proposers refused with 400 and 404: one MoA run, 502 too_few_proposers, x-should-retry false', async () => {
      const since = Date.now();
      const error = (await client.chat.completions
        .create({ model: 'refused', messages: MESSAGES })
        .catch((caught: unknown) => caught)) as APIError;
      expect(error).toBeInstanceOf(APIError);
      expect(error.status).toBe(502);
      expect(error.code).toBe('too_few_proposers');
      expect(error.headers?.get('x-should-retry')).toBe('false');
      // Exactly one run: each proposer called once, the aggregator never.
      expect(callsTo(['bad-request', 'retired'], since)).toHaveLength(2);
      expect(callsTo(['final'], since)).toHaveLength(0);
    });

    it("an aggregator's 4xx: one MoA run, x-should-retry false", async () => {
      const since = Date.now();
      const error = (await client.chat.completions
        .create({ model: 'refused-aggregator', messages: MESSAGES })
        .catch((caught: unknown) => caught)) as APIError;
      expect([error.status, error.code]).toEqual([502, 'aggregator_failed']);
      expect(error.headers?.get('x-should-retry')).toBe('false');
      expect(callsTo(['good'], since)).toHaveLength(1);
      expect(callsTo(['bad-request'], since)).toHaveLength(1);
    });

    it("a provider's 5xx: x-should-retry true, and the SDK's retry runs it again and succeeds", async () => {
      stack.fake.script('flaky', { status: 500 });
      const since = Date.now();
      const completion = await client.chat.completions.create({ model: 'flaky', messages: MESSAGES });
      expect(completion.choices[0]!.message.content).toBeTruthy();
      // The first run failed on the 500; the SDK retried, and the second run completed.
      expect(callsTo(['flaky'], since).map((recorded) => recorded.status)).toEqual([500, 200]);
      expect(callsTo(['final'], since)).toHaveLength(1);

      stack.fake.script('flaky', { status: 503 });
      const raw = await request(stack.app)
        .post('/v1/chat/completions')
        .send({ model: 'flaky', messages: MESSAGES });
      expect([raw.status, raw.body.error.code, raw.headers['x-should-retry']]).toEqual([
        502,
        'too_few_proposers',
        'true',
      ]);
    });

    it('every error answer says whether to retry', async () => {
      const notFound = await request(stack.app)
        .post('/v1/chat/completions')
        .send({ model: 'nope', messages: MESSAGES });
      expect([notFound.status, notFound.headers['x-should-retry']]).toEqual([404, 'false']);
      const unknownRoute = await fetch(`${baseUrl}/v1/nothing`);
      expect([unknownRoute.status, unknownRoute.headers.get('x-should-retry')]).toEqual([404, 'false']);
    });
  });
});
