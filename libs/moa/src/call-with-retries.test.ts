import { describe, it, expect } from 'vitest';
import { abortableSleep } from './abortable-sleep.js';
import { callWithRetries, type CallWithRetriesOptions } from './call-with-retries.js';
import { ProviderConflictError } from './errors/conflict-error.js';
import { ProviderConnectionError } from './errors/connection-error.js';
import { InvalidRequestError } from './errors/invalid-request-error.js';
import { LayerDeadlineError } from './errors/layer-deadline-error.js';
import { ProviderRateLimitError } from './errors/rate-limit-error.js';
import { ProviderServerError } from './errors/server-error.js';
import { ProviderTimeoutError } from './errors/timeout-error.js';
import type { ResolvedModel } from './model-registry.js';
import { createInMemoryModel, type InMemoryModel, type InMemoryResponse } from './testing/in-memory-model.js';
import type { AgentConfig, ChatMessage, ModelPricing } from './types.js';

const agent: AgentConfig = { model: 'mem/m', temperature: 0.3, maxTokens: 64 };
const messages: ChatMessage[] = [{ role: 'user', content: 'two words' }];
const pricing: ModelPricing = { inputCostPerMTok: 3, outputCostPerMTok: 7 };

function resolved(chatModel: InMemoryModel, maxAttempts = 3, price: ModelPricing | null = pricing) {
  const model: ResolvedModel = {
    modelId: 'mem/m',
    provider: 'mem',
    providerModel: 'm',
    chatModel,
    pricing: price ?? undefined,
    providerConfig: {
      name: 'mem',
      baseURL: 'http://127.0.0.1:1/v1',
      concurrency: 1,
      timeoutMs: 1000,
      maxAttempts,
    },
  };
  return model;
}

/** A model answering with each scripted response in turn, then `ok` for ever. */
function scripted(...responses: InMemoryResponse[]): InMemoryModel {
  return createInMemoryModel({ respond: (_request, callNumber) => responses[callNumber - 1] ?? 'ok' });
}

/** Options recording every sleep and retry; the sleep resolves at once. */
function recording(extra: Partial<CallWithRetriesOptions> = {}) {
  const delays: number[] = [];
  const retries: { reason: string; delayMs: number }[] = [];
  const options: CallWithRetriesOptions = {
    agentIndex: 2,
    sleep: async (milliseconds) => {
      delays.push(milliseconds);
    },
    onRetry: (reason, delayMs) => retries.push({ reason, delayMs }),
    ...extra,
  };
  return { options, delays, retries };
}

const serverError = () => new ProviderServerError('boom', { status: 500 });

describe('callWithRetries', () => {
  it('returns a completed record with usage, cost and attempts 1 on success', async () => {
    const chatModel = createInMemoryModel({ respond: () => 'three word answer' });
    const { options, delays } = recording();
    const record = await callWithRetries(resolved(chatModel), agent, messages, options);
    expect(record).toMatchObject({
      model: 'mem/m',
      agentIndex: 2,
      status: 'completed',
      output: 'three word answer',
      usage: { promptTokens: 2, completionTokens: 3 },
      attempts: 1,
      error: null,
    });
    expect(record.costUsd).toBe((2 * 3 + 3 * 7) / 1e6);
    expect(record.finishedAt).toBeGreaterThanOrEqual(record.startedAt);
    expect(delays).toEqual([]);
    // The adapter got the provider's model id and the agent's sampling settings.
    expect(chatModel.calls).toHaveLength(1);
    expect(chatModel.calls[0]).toMatchObject({ model: 'm', temperature: 0.3, maxTokens: 64, messages });
  });

  it('honours maxAttempts: an always-500 provider gets exactly maxAttempts attempts', async () => {
    const chatModel = createInMemoryModel({ respond: serverError });
    const { options, delays, retries } = recording();
    const record = await callWithRetries(resolved(chatModel, 3), agent, messages, options);
    expect(chatModel.calls).toHaveLength(3);
    expect(record.status).toBe('failed');
    expect(record.attempts).toBe(3);
    expect(record.output).toBeNull();
    expect(record.error).toEqual({ message: 'boom', type: 'server_error', code: null });
    expect(record.usage).toEqual({ promptTokens: 0, completionTokens: 0 });
    expect(record.costUsd).toBe(0);
    expect(delays).toHaveLength(2);
    expect(retries.map((retry) => retry.reason)).toEqual(['server_error', 'server_error']);
    expect(retries.map((retry) => retry.delayMs)).toEqual(delays);
  });

  it('makes a single attempt when maxAttempts is 1', async () => {
    const chatModel = createInMemoryModel({ respond: serverError });
    const { options, delays } = recording();
    const record = await callWithRetries(resolved(chatModel, 1), agent, messages, options);
    expect(chatModel.calls).toHaveLength(1);
    expect(record).toMatchObject({ status: 'failed', attempts: 1 });
    expect(delays).toEqual([]);
  });

  it('fails at once on a non-retryable error', async () => {
    const chatModel = createInMemoryModel({
      respond: () => new InvalidRequestError('bad request', { status: 400, code: 'bad' }),
    });
    const { options, delays, retries } = recording();
    const record = await callWithRetries(resolved(chatModel, 5), agent, messages, options);
    expect(chatModel.calls).toHaveLength(1);
    expect(record.status).toBe('failed');
    expect(record.attempts).toBe(1);
    expect(record.error).toEqual({ message: 'bad request', type: 'invalid_request_error', code: 'bad' });
    expect(delays).toEqual([]);
    expect(retries).toEqual([]);
  });

  it('recovers from a retryable error and records the attempts', async () => {
    const chatModel = scripted(serverError(), serverError(), 'fine now');
    const { options } = recording();
    const record = await callWithRetries(resolved(chatModel, 3), agent, messages, options);
    expect(record).toMatchObject({ status: 'completed', output: 'fine now', attempts: 3, error: null });
  });

  it('backs off with growing delays from 500 ms', async () => {
    const chatModel = createInMemoryModel({ respond: serverError });
    const { options, delays } = recording();
    await callWithRetries(resolved(chatModel, 5), agent, messages, options);
    expect(delays).toHaveLength(4);
    [500, 1000, 2000, 4000].forEach((base, index) => {
      expect(delays[index]).toBeGreaterThanOrEqual(base * 0.75);
      expect(delays[index]).toBeLessThanOrEqual(base);
    });
    for (let index = 1; index < delays.length; index += 1) {
      expect(delays[index]).toBeGreaterThan(delays[index - 1] as number);
    }
  });

  it("uses the error's retryAfterMs as the delay when present", async () => {
    const chatModel = scripted(new ProviderServerError('busy', { status: 503, retryAfterMs: 777 }), 'ok');
    const { options, delays, retries } = recording();
    const record = await callWithRetries(resolved(chatModel), agent, messages, options);
    expect(record).toMatchObject({ status: 'completed', attempts: 2 });
    expect(delays).toEqual([777]);
    expect(retries).toEqual([{ reason: 'server_error', delayMs: 777 }]);
  });

  it('waits out a 429 for Retry-After without spending an attempt', async () => {
    const chatModel = scripted(
      new ProviderRateLimitError('slow down', { status: 429, retryAfterMs: 1234 }),
      new ProviderRateLimitError('slow down', { status: 429, retryAfterMs: 50 }),
      'ok',
    );
    const { options, delays, retries } = recording();
    // maxAttempts 1: if a 429 counted as an attempt, the call would fail.
    const record = await callWithRetries(resolved(chatModel, 1), agent, messages, options);
    expect(record).toMatchObject({ status: 'completed', attempts: 1 });
    expect(chatModel.calls).toHaveLength(3);
    expect(delays).toEqual([1234, 50]);
    expect(retries).toEqual([
      { reason: 'rate_limit', delayMs: 1234 },
      { reason: 'rate_limit', delayMs: 50 },
    ]);
  });

  it('waits defaultRateLimitWaitMs after a 429 without Retry-After', async () => {
    const chatModel = scripted(new ProviderRateLimitError('slow down', { status: 429 }), 'ok');
    const defaults = recording();
    await callWithRetries(resolved(chatModel), agent, messages, defaults.options);
    expect(defaults.delays).toEqual([1000]);

    const custom = recording({ defaultRateLimitWaitMs: 42 });
    const again = scripted(new ProviderRateLimitError('slow down', { status: 429 }), 'ok');
    await callWithRetries(resolved(again), agent, messages, custom.options);
    expect(custom.delays).toEqual([42]);
  });

  it('bounds the 429 waits: past maxRateLimitWaits a 429 counts as an attempt', async () => {
    const chatModel = createInMemoryModel({
      respond: () => new ProviderRateLimitError('always', { status: 429, retryAfterMs: 10 }),
    });
    const { options, delays } = recording({ maxRateLimitWaits: 2 });
    const record = await callWithRetries(resolved(chatModel, 2), agent, messages, options);
    // 2 free waits, then attempts 1 and 2 (one more wait between them).
    expect(chatModel.calls).toHaveLength(4);
    expect(delays).toEqual([10, 10, 10]);
    expect(record).toMatchObject({ status: 'failed', attempts: 2 });
    expect(record.error?.type).toBe('rate_limit_error');
  });

  it('tells onRetry the reason of each retry', async () => {
    const chatModel = scripted(
      new ProviderRateLimitError('429', { status: 429, retryAfterMs: 5 }),
      new ProviderTimeoutError('408', { status: 408 }),
      new ProviderConflictError('409', { status: 409 }),
      new ProviderConnectionError('reset'),
      'ok',
    );
    const { options, retries } = recording();
    const record = await callWithRetries(resolved(chatModel, 4), agent, messages, options);
    expect(record).toMatchObject({ status: 'completed', attempts: 4 });
    expect(retries.map((retry) => retry.reason)).toEqual([
      'rate_limit',
      'timeout_error',
      'conflict_error',
      'connection_error',
    ]);
  });

  it('treats an unexpected thrown error as a retryable server error', async () => {
    const chatModel = scripted(new TypeError('oops'), 'ok');
    const { options, retries } = recording();
    const record = await callWithRetries(resolved(chatModel), agent, messages, options);
    expect(record).toMatchObject({ status: 'completed', attempts: 2 });
    expect(retries.map((retry) => retry.reason)).toEqual(['server_error']);
  });

  it('reports a null cost on a call to an unpriced model', async () => {
    const chatModel = createInMemoryModel({ respond: () => 'a b' });
    const { options } = recording();
    const record = await callWithRetries(resolved(chatModel, 3, null), agent, messages, options);
    expect(record.status).toBe('completed');
    expect(record.costUsd).toBeNull();
  });

  it('records the abort reason when the signal aborts during a call, without retrying', async () => {
    const controller = new AbortController();
    const chatModel = createInMemoryModel({ latencyMs: 60_000 });
    const { options, delays } = recording({ signal: controller.signal });
    setTimeout(() => controller.abort(new LayerDeadlineError(20)), 20);
    const record = await callWithRetries(resolved(chatModel), agent, messages, options);
    expect(chatModel.calls).toHaveLength(1);
    expect(delays).toEqual([]);
    expect(record.status).toBe('failed');
    expect(record.attempts).toBe(1);
    expect(record.error).toMatchObject({ type: 'timeout_error', code: 'layer_deadline' });
  });

  it('stops waiting when the signal aborts during the backoff sleep', async () => {
    const controller = new AbortController();
    const chatModel = createInMemoryModel({
      respond: () => new ProviderRateLimitError('later', { status: 429, retryAfterMs: 60_000 }),
    });
    setTimeout(() => controller.abort(new LayerDeadlineError(30)), 30);
    const started = Date.now();
    const record = await callWithRetries(resolved(chatModel), agent, messages, {
      agentIndex: 0,
      signal: controller.signal,
      sleep: abortableSleep,
    });
    expect(Date.now() - started).toBeLessThan(30_000);
    expect(chatModel.calls).toHaveLength(1);
    expect(record.status).toBe('failed');
    expect(record.attempts).toBe(1);
    expect(record.error).toMatchObject({ type: 'timeout_error', code: 'layer_deadline' });
  });
});
