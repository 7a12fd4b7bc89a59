import {
  callJobId,
  jobView,
  type MoaQueues,
  type RequestJobData,
  type RequestProgress,
} from '@moa-queue/contract';
import { createModelRegistry, InvalidRequestError, parseMoaConfig } from '@moa-queue/moa';
import { createInMemoryModel, type InMemoryModel } from '@moa-queue/moa/testing';
import { pollUntil, uniquePrefix } from '@moa-queue/test-support';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startWorkerTestHarness, type WorkerTestHarness } from './testing/worker-test-harness.js';

/*
 * An aggregator whose provider says `context_length_exceeded` is run once
 * more, as a new call job (`-R1`), with half the reference budget; the
 * in-memory model stands in for the provider (the HTTP path maps the code in
 * openai-compatible-provider.ts).
 */
describe('the orchestrator runs a too-long aggregator again with halved references', () => {
  let harness: WorkerTestHarness;
  let queues: MoaQueues;
  let model: InMemoryModel;
  /** Aggregator calls that exceed the context: the first `tooLong` of them. */
  let tooLong = 0;
  const prefix = uniquePrefix('context-retry');
  const config = parseMoaConfig({
    providers: { mem: { baseURL: 'http://127.0.0.1:1/v1' } },
    presets: {
      duo: {
        layers: [[{ model: 'mem/alpha' }, { model: 'mem/beta' }]],
        aggregator: { model: 'mem/aggregator' },
      },
    },
    defaultPreset: 'duo',
  });

  beforeAll(async () => {
    let aggregatorCalls = 0;
    model = createInMemoryModel({
      provider: 'mem',
      respond: (request) => {
        if (request.model !== 'aggregator') return `${request.model} says hello`;
        aggregatorCalls += 1;
        return aggregatorCalls <= tooLong
          ? new InvalidRequestError('mem: too many tokens', { status: 400, code: 'context_length_exceeded' })
          : 'the synthesis';
      },
    });
    harness = await startWorkerTestHarness({
      redisUrl: inject('redisUrl'),
      queuePrefix: prefix,
      moa: config,
      models: createModelRegistry(config, { createChatModel: () => model, env: {} }),
      providers: ['mem'],
    });
    ({ queues } = harness);
  });
  afterAll(async () => {
    await harness?.close();
  });

  async function run(requestId: string) {
    const data: RequestJobData = {
      requestId,
      tenant: 'default',
      preset: config.presets.duo!,
      messages: [{ role: 'user', content: 'a long conversation' }],
      metadata: {},
      createdAt: Date.now(),
      source: 'jobs',
    };
    await queues.requests.add('moa', data, { jobId: requestId });
    const job = await pollUntil(
      () => queues.requests.getJob(requestId),
      (value) => value?.finishedOn !== undefined,
      30_000,
    );
    const state = await job!.getState();
    const progress = job!.progress as RequestProgress;
    return {
      job: job!,
      view: jobView({
        data,
        status: state === 'failed' ? 'failed' : job!.returnvalue.status,
        finishedOn: job!.finishedOn,
        progress,
        result: state === 'failed' ? undefined : { ...job!.returnvalue, layers: progress.layers },
        failedReason: job!.failedReason,
      }),
    };
  }

  it('completes with the second run, recorded as a new call with reference_share 0.5', async () => {
    tooLong = 1;
    const before = model.calls.length;
    const { view } = await run('job_contextonce');
    expect(view.status).toBe('completed');
    expect(view.output).toBe('the synthesis');
    expect(view.layers.map((layer) => [layer.layer, layer.role, layer.reference_share])).toEqual([
      [1, 'proposer', undefined],
      [2, 'aggregator', 0.5],
    ]);
    expect(view.layers[1]!.calls).toHaveLength(1);
    expect(model.calls.length - before).toBe(4);
    const llm = queues.llm('mem');
    expect(await llm.getJobState(callJobId('job_contextonce', 2, 0))).toBe('failed');
    // The second run was a job of its own (round 1), removed as it completed: its record is the layer's call.
    expect(await llm.getJobState(callJobId('job_contextonce', 2, 0, 1))).toBe('unknown');
    expect(view.layers[1]!.calls[0]!.status).toBe('completed');
  });

  it('fails as aggregator_failed when the second run is too long as well', async () => {
    tooLong = Number.POSITIVE_INFINITY;
    const before = model.calls.length;
    const { view } = await run('job_contexttwice');
    expect(view.status).toBe('failed');
    expect(view.error).toMatchObject({ code: 'aggregator_failed' });
    expect(view.layers[1]).toMatchObject({ layer: 2, reference_share: 0.5 });
    expect(view.layers[1]!.calls[0]!.error).toMatchObject({ code: 'context_length_exceeded' });
    // Two proposers, two aggregator runs: never a third.
    expect(model.calls.length - before).toBe(4);
  });
});
