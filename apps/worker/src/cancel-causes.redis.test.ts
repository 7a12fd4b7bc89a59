import {
  callJobId,
  markCancelled,
  publishCallCancels,
  type MoaQueues,
  type RequestJobData,
  type RequestProgress,
} from '@moa-queue/contract';
import { createFakeProvider, type FakeProvider } from '@moa-queue/fake-provider';
import { parseMoaConfig, type CallRecord } from '@moa-queue/moa';
import { pollUntil, uniquePrefix } from '@moa-queue/test-support';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startWorkerTestHarness, type WorkerTestHarness } from './testing/worker-test-harness.js';

/*
 * A stopped call records why as a code: the cause travels from whoever stops
 * it (a deadline, a cancel) over pub/sub to the worker running it, as the
 * call's abort reason, and onto its record. Nothing reads it back from text.
 */
describe('cancel causes reach the call records as codes', () => {
  let fake: FakeProvider;
  let harness: WorkerTestHarness;
  let redis: Redis;
  let queues: MoaQueues;
  const prefix = uniquePrefix('cancel-causes');
  const config = () =>
    parseMoaConfig({
      providers: { fake: { baseURL: fake.url, maxAttempts: 3 } },
      presets: {
        duo: {
          layers: [[{ model: 'fake/held' }, { model: 'fake/beta' }]],
          aggregator: { model: 'fake/aggregator' },
        },
      },
      defaultPreset: 'duo',
    });

  beforeAll(async () => {
    fake = await createFakeProvider({ defaultLatencyMs: 5 });
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

  /** Starts a request whose first proposer is held by the fake until the test stops it. */
  async function startHeld(requestId: string): Promise<void> {
    fake.setBehaviour('held', { hold: true });
    const data: RequestJobData = {
      requestId,
      tenant: 'default',
      preset: config().presets.duo!,
      messages: [{ role: 'user', content: 'stop me' }],
      metadata: {},
      createdAt: Date.now(),
      source: 'jobs',
    };
    await queues.requests.add('moa', data, { jobId: requestId });
    await pollUntil(
      async () => fake.held('held'),
      (held) => held > 0,
      30_000,
    );
  }

  /** The record a stopped call left for its request. */
  async function recordOf(requestId: string): Promise<CallRecord> {
    const id = callJobId(requestId, 1, 0);
    const state = await pollUntil(
      () => queues.llm('fake').getJobState(id),
      (value) => value === 'failed',
      30_000,
    );
    expect(state).toBe('failed');
    return (await queues.llm('fake').getJob(id))!.progress as CallRecord;
  }

  it('records a call aborted at its layer deadline as layer_deadline, and the layer goes on', async () => {
    const requestId = 'job_causedeadline';
    await startHeld(requestId);
    await publishCallCancels(redis, prefix, [callJobId(requestId, 1, 0)], 'layer_deadline');
    expect((await recordOf(requestId)).error).toEqual({
      message: 'abandoned at the layer deadline',
      type: 'timeout_error',
      code: 'layer_deadline',
    });
    // The other proposer answered: minProposers 1 is met, and the request completes.
    const job = await pollUntil(
      () => queues.requests.getJob(requestId),
      (value) => value?.finishedOn !== undefined,
      30_000,
    );
    expect(job!.returnvalue).toMatchObject({ status: 'completed' });
    const layer = (job!.progress as RequestProgress).layers[0]!;
    expect(layer.calls.find((call) => call.agentIndex === 0)?.error?.code).toBe('layer_deadline');
  });

  it('records a call aborted by a cancel as cancelled, and the request ends cancelled', async () => {
    const requestId = 'job_causecancel';
    await startHeld(requestId);
    await markCancelled(redis, prefix, requestId);
    await publishCallCancels(redis, prefix, [callJobId(requestId, 1, 0)], 'cancelled');
    expect((await recordOf(requestId)).error).toMatchObject({ type: 'cancelled', code: 'cancelled' });
    const job = await pollUntil(
      () => queues.requests.getJob(requestId),
      (value) => value?.finishedOn !== undefined,
      30_000,
    );
    expect(job!.returnvalue).toMatchObject({
      status: 'cancelled',
      error: { type: 'cancelled', code: 'cancelled' },
    });
  });

  it('records a call that starts after the cancel marker as cancelled, without calling the provider', async () => {
    fake.reset();
    const requestId = 'job_causelate';
    await markCancelled(redis, prefix, requestId);
    // Added as the orchestrator would have, just before the cancel.
    await queues.llm('fake').add(
      'L1',
      {
        requestId,
        presetName: 'duo',
        layer: 1,
        role: 'proposer',
        agentIndex: 0,
        agent: config().presets.duo!.layers[0]![0]!,
      },
      { jobId: callJobId(requestId, 1, 0) },
    );
    expect((await recordOf(requestId)).error).toMatchObject({ type: 'cancelled', code: 'cancelled' });
    expect(fake.requests).toHaveLength(0);
  });
});
