import {
  callJobId,
  QUEUE_EVENTS_MAX_LENGTH,
  requestJobKey,
  type MoaQueues,
  type RequestJobData,
  type RequestProgress,
} from '@moa-queue/contract';
import { createFakeProvider, type FakeProvider } from '@moa-queue/fake-provider';
import { parseMoaConfig } from '@moa-queue/moa';
import { pollUntil, uniquePrefix } from '@moa-queue/test-support';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startWorkerTestHarness, type WorkerTestHarness } from './testing/worker-test-harness.js';

/*
 * Each text is stored once: a call job carries what identifies its prompt,
 * the call builds the prompt from its request, a completed call leaves only
 * its record in its request, and once the request ends its layers (in the
 * progress) are the one copy of every answer.
 */
describe('a request stores each text once', () => {
  let fake: FakeProvider;
  let harness: WorkerTestHarness;
  let redis: Redis;
  let queues: MoaQueues;
  const prefix = uniquePrefix('stored-once');
  const config = () =>
    parseMoaConfig({
      providers: { fake: { baseURL: fake.url, maxAttempts: 3 } },
      presets: {
        deep: {
          layers: [
            [{ model: 'fake/alpha' }, { model: 'fake/beta' }],
            [{ model: 'fake/alpha' }, { model: 'fake/beta' }],
          ],
          aggregator: { model: 'fake/aggregator' },
        },
      },
      defaultPreset: 'deep',
    });

  beforeAll(async () => {
    // Realistic answers: 400 words each.
    fake = await createFakeProvider({ defaultLatencyMs: 5, outputWords: 400 });
    harness = await startWorkerTestHarness({
      redisUrl: inject('redisUrl'),
      queuePrefix: prefix,
      moa: config(),
      providers: ['fake'],
    });
    ({ redis, queues } = harness);
  });
  afterAll(async () => {
    fake?.reset();
    await harness?.close();
    await fake?.close();
  });

  function requestData(requestId: string): RequestJobData {
    return {
      requestId,
      tenant: 'default',
      preset: config().presets.deep!,
      messages: [{ role: 'user', content: 'What is a queue?' }],
      metadata: {},
      createdAt: Date.now(),
      source: 'jobs',
    };
  }

  /** Every value under the prefix (strings, hash fields, list items, stream fields), by key. */
  async function everyValue(): Promise<Map<string, string[]>> {
    const values = new Map<string, string[]>();
    for (const key of await redis.keys(`${prefix}:*`)) {
      const type = await redis.type(key);
      if (type === 'string') values.set(key, [(await redis.get(key)) ?? '']);
      if (type === 'hash') values.set(key, Object.values(await redis.hgetall(key)));
      if (type === 'list') values.set(key, await redis.lrange(key, 0, -1));
      if (type === 'stream') {
        values.set(
          key,
          (await redis.xrange(key, '-', '+')).flatMap(([, fields]) => fields),
        );
      }
    }
    return values;
  }

  it('leaves every answer in the request once, and no call job behind', async () => {
    const requestId = 'job_storedonce1';
    await queues.requests.add('moa', requestData(requestId), { jobId: requestId });
    const job = await pollUntil(
      () => queues.requests.getJob(requestId),
      (value) => value?.finishedOn !== undefined,
      30_000,
    );
    expect(await job!.getState()).toBe('completed');
    const layers = (job!.progress as RequestProgress).layers;
    const answers = layers.flatMap((layer) => layer.calls.map((call) => call.output!));
    expect(answers).toHaveLength(5);
    for (const answer of answers) expect(answer.split(' ').length).toBeGreaterThanOrEqual(400);

    // No call job is kept, and the results BullMQ copied into the request are gone with its end.
    expect(await queues.llm('fake').getJobCounts('completed', 'failed')).toEqual({ completed: 0, failed: 0 });
    expect(await redis.exists(`${requestJobKey(prefix, requestId)}:processed`)).toBe(0);
    // The stored result names no answer: the aggregator's layer is where it is.
    expect(job!.returnvalue).not.toHaveProperty('output');

    // Each answer is stored once, outside BullMQ's bounded event buffers (checked below).
    const values = await everyValue();
    for (const answer of answers) {
      const holders = [...values].flatMap(([key, texts]) =>
        key.endsWith(':events') ? [] : texts.filter((text) => text.includes(answer)).map(() => key),
      );
      expect(holders).toEqual([requestJobKey(prefix, requestId)]);
    }
    // The request's hash holds them in its progress alone.
    const fields = await redis.hgetall(requestJobKey(prefix, requestId));
    const holding = Object.entries(fields).filter(([, value]) => value.includes(answers[4]!));
    expect(holding.map(([field]) => field)).toEqual(['progress']);
  });

  it("bounds BullMQ's event buffers, where finished calls' records pass", async () => {
    for (const queue of queues.all()) {
      expect(await redis.hget(`${prefix}:${queue.name}:meta`, 'opts.maxLenEvents')).toBe(
        String(QUEUE_EVENTS_MAX_LENGTH),
      );
    }
  });

  it('never pays twice for a call added again after it completed', async () => {
    const requestId = 'job_storedonce2';
    fake.reset();
    // The aggregator is held, so the request stays open with its calls' results in Redis.
    fake.setBehaviour('aggregator', { hold: true });
    await queues.requests.add('moa', requestData(requestId), { jobId: requestId });
    await pollUntil(
      async () => fake.held('aggregator'),
      (held) => held > 0,
      30_000,
    );
    const paid = fake.requests.filter((request) => request.model === 'alpha').length;
    expect(paid).toBe(2);
    const parent = await queues.requests.getJob(requestId);
    // As a re-run orchestrator would add it, between reading the results and adding the layer.
    const again = callJobId(requestId, 2, 0);
    await queues.llm('fake').add(
      'L2',
      {
        requestId,
        presetName: 'deep',
        layer: 2,
        role: 'proposer',
        agentIndex: 0,
        agent: config().presets.deep!.layers[1]![0]!,
      },
      { jobId: again, parent: { id: requestId, queue: parent!.queueQualifiedName }, removeOnComplete: false },
    );
    const rerun = await pollUntil(
      () => queues.llm('fake').getJob(again),
      (value) => value?.finishedOn !== undefined,
      30_000,
    );
    const recorded = JSON.parse(
      (await redis.hget(`${requestJobKey(prefix, requestId)}:processed`, queues.llm('fake').toKey(again)))!,
    );
    expect(rerun!.returnvalue).toEqual(recorded);
    expect(fake.requests.filter((request) => request.model === 'alpha').length).toBe(paid);

    fake.release('aggregator');
    const job = await pollUntil(
      () => queues.requests.getJob(requestId),
      (value) => value?.finishedOn !== undefined,
      30_000,
    );
    expect(await job!.getState()).toBe('completed');
    fake.setBehaviour('aggregator', undefined);
  });
});
