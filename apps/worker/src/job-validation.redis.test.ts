import { createMoaQueues, requestJobKey, type MoaQueues, type RequestJobData } from '@moa-queue/contract';
import { createFakeProvider, type FakeProvider } from '@moa-queue/fake-provider';
import { parseMoaConfig } from '@moa-queue/moa';
import { pollUntil, uniquePrefix } from '@moa-queue/test-support';
import { Job, type Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startMoaWorker, type MoaWorker } from './moa-worker.js';
import { testWorkerConfig } from './testing/test-worker-config.js';

/** What an attacker puts in a forged job; none of it may reach a provider or a metric label. */
const EVIL_PRESET = 'evil-preset';
const EVIL_MODEL = 'steal-money';

describe('workers refuse job data they did not write', () => {
  let fake: FakeProvider;
  let worker: MoaWorker;
  let redis: Redis;
  let queues: MoaQueues;
  let prefix: string;
  const warnings: { msg: string; queue?: string; jobId?: string }[] = [];
  const config = () =>
    parseMoaConfig({
      providers: { fake: { baseURL: fake.url, maxAttempts: 3 } },
      models: { 'fake/alpha': { inputCostPerMTok: 1, outputCostPerMTok: 1 } },
      presets: {
        duo: {
          layers: [[{ model: 'fake/alpha' }, { model: 'fake/beta' }]],
          aggregator: { model: 'fake/aggregator' },
        },
      },
      defaultPreset: 'duo',
    });

  beforeAll(async () => {
    fake = await createFakeProvider({ defaultLatencyMs: 5 });
    prefix = uniquePrefix('job-validation');
    worker = await startMoaWorker({
      config: testWorkerConfig({ redisUrl: inject('redisUrl'), queuePrefix: prefix, moa: config() }),
      logger: pino({ level: 'warn' }, { write: (line: string) => void warnings.push(JSON.parse(line)) }),
    });
    redis = new Redis(inject('redisUrl'), { maxRetriesPerRequest: null });
    queues = createMoaQueues({ connection: redis, prefix, providers: ['fake'] });
  });
  afterAll(async () => {
    await worker?.close();
    await queues?.close();
    if (redis) {
      const keys = await redis.keys(`${prefix}:*`);
      if (keys.length > 0) await redis.del(...keys);
      redis.disconnect();
    }
    await fake?.close();
  });

  const preset = () => structuredClone(config().presets.duo!);
  const request = (requestId: string, overrides: Record<string, unknown> = {}) => ({
    requestId,
    tenant: 'default',
    preset: preset(),
    messages: [{ role: 'user', content: 'What is a queue?' }],
    metadata: {},
    createdAt: Date.now(),
    source: 'jobs',
    ...overrides,
  });
  const evilAgent = { model: `evil/${EVIL_MODEL}`, temperature: 0.7, maxTokens: 512 };
  const call = (requestId: string, overrides: Record<string, unknown> = {}) => ({
    requestId,
    presetName: 'duo',
    layer: 1,
    role: 'proposer',
    agentIndex: 0,
    agent: { model: 'fake/alpha', temperature: 0.7, maxTokens: 512 },
    ...overrides,
  });

  /** Waits for a job to end and returns it. */
  async function settled(queue: Queue, id: string): Promise<Job> {
    const state = await pollUntil(
      () => queue.getJobState(id),
      (value) => value === 'failed' || value === 'completed',
      20_000,
    );
    const job = await Job.fromId(queue, id);
    expect(job, `${queue.name} ${id} ended ${state}`).toBeDefined();
    return job!;
  }

  it('fails each malformed job at once, naming the field, without a provider call', async () => {
    const requestCases: [string, unknown, string][] = [
      // Wrong types.
      [
        'job_wrongtypes',
        request('job_wrongtypes', { messages: 'hello', createdAt: 'yesterday' }),
        'messages: ',
      ],
      [
        'job_wrongagent',
        request('job_wrongagent', {
          preset: { ...preset(), layers: [[{ model: 'fake/alpha', temperature: 'hot', maxTokens: 1 }]] },
        }),
        'preset.layers.0.0.temperature: ',
      ],
      // An unknown preset name carrying an attacker's model and provider.
      [
        'job_evilpreset',
        request('job_evilpreset', {
          preset: { ...preset(), name: EVIL_PRESET, layers: [[evilAgent]], aggregator: evilAgent },
        }),
        `preset.name: unknown preset "${EVIL_PRESET}"`,
      ],
      // A configured preset name whose snapshot calls an unconfigured provider.
      [
        'job_evilprovider',
        request('job_evilprovider', { preset: { ...preset(), layers: [[evilAgent]] } }),
        'preset.layers.0.0.model: unknown provider "evil"',
      ],
      // A configured provider's queue reached through a model of a prototype name.
      [
        'job_protoprovider',
        request('job_protoprovider', {
          preset: { ...preset(), aggregator: { ...evilAgent, model: 'constructor/x' } },
        }),
        'preset.aggregator.model: unknown provider "constructor"',
      ],
      // Missing fields.
      ['job_missing', { requestId: 'job_missing', tenant: 'default' }, 'preset: '],
      ['job_notanobject', 'please run me', 'invalid job data: '],
      // Valid data under someone else's id.
      ['job_other', request('job_elsewhere'), 'requestId: is not the id of this job'],
    ];
    for (const [id, data] of requestCases) {
      await queues.requests.add('moa', data as RequestJobData, { jobId: id, attempts: 3 });
    }
    const callCases: [string, unknown, string][] = [
      ['job_c1-L1-A0', call('job_c1', { layer: 'one' }), 'layer: '],
      ['job_c2-L1-A0', call('job_c2', { agent: evilAgent }), 'agent.model: unknown provider "evil"'],
      [
        'job_c3-L1-A0',
        call('job_c3', { presetName: EVIL_PRESET, agent: { ...evilAgent, model: `fake/${EVIL_MODEL}` } }),
        `presetName: unknown preset "${EVIL_PRESET}"`,
      ],
      ['job_c4-L1-A0', { requestId: 'job_c4' }, 'presetName: '],
      ['forged-id', call('job_c5'), 'requestId: '],
      // A call builds its prompt from its request's job, which is validated like the call's own data.
      ['job_c6-L1-A0', call('job_c6'), 'requestId: names no request'],
      [
        'job_c7-L1-A0',
        call('job_c7', { agent: { ...call('x').agent, model: 'fake/beta' } }),
        'agent.model: ',
      ],
      [
        'job_c8-L2-A0',
        call('job_c8', { layer: 2, role: 'aggregator' }),
        'layer: the request has recorded no',
      ],
      ['job_c9-L1-A0', call('job_c9'), 'preset.name: unknown preset'],
      ['job_c10-L1-A1', call('job_c10', { agentIndex: 1 }), 'requestId: is not the id of the request'],
    ];
    // Request jobs' hashes only (no queue entry, so no worker runs them), as a call reads them.
    const requestHashes: [string, unknown][] = [
      ['job_c7', request('job_c7')],
      ['job_c8', request('job_c8')],
      ['job_c9', request('job_c9', { preset: { ...preset(), name: EVIL_PRESET } })],
      ['job_c10', request('job_other')],
    ];
    for (const [id, data] of requestHashes) {
      await redis.hset(requestJobKey(prefix, id), 'data', JSON.stringify(data));
    }
    for (const [id, data] of callCases) {
      await queues.llm('fake').add('L1', data as never, { jobId: id, attempts: 3 });
    }
    await queues.deadlines.add(
      'deadline',
      {
        requestId: 'job_d1',
        layer: 1,
        layerTimeoutMs: 1000,
        calls: [{ jobId: 'job_d1-L1-A0', provider: 'evil' }],
      },
      { jobId: 'job_d1-L1-deadline', attempts: 3 },
    );
    await queues.batches.add('drain', { batchId: '../../etc' }, { jobId: 'forged-batch', attempts: 3 });

    const all: [Queue, string, string][] = [
      ...requestCases.map(([id, , reason]) => [queues.requests, id, reason] as [Queue, string, string]),
      ...callCases.map(([id, , reason]) => [queues.llm('fake'), id, reason] as [Queue, string, string]),
      [queues.deadlines, 'job_d1-L1-deadline', 'calls.0.provider: unknown provider "evil"'],
      [queues.batches, 'forged-batch', 'batchId: '],
    ];
    for (const [queue, id, reason] of all) {
      const job = await settled(queue, id);
      expect(await job.getState(), `${queue.name} ${id}`).toBe('failed');
      expect(job.attemptsMade, `${queue.name} ${id}`).toBe(1);
      expect(job.failedReason, `${queue.name} ${id}`).toMatch(/^invalid job data: /);
      expect(job.failedReason, `${queue.name} ${id}`).toContain(reason);
    }
    // Each refusal is logged as a warning for the operator.
    const refused = warnings.filter((line) => line.msg === 'job refused: invalid data');
    expect(refused.map((line) => `${line.queue} ${line.jobId}`).sort()).toEqual(
      all.map(([queue, id]) => `${queue.name} ${id}`).sort(),
    );
    // No forged job reached the provider, and none added a call.
    expect(fake.requests).toHaveLength(0);
    expect(await queues.llm('fake').getJobCountByTypes('waiting', 'active', 'delayed', 'prioritized')).toBe(
      0,
    );
  });

  it('keeps processing: a valid request afterwards completes', async () => {
    await queues.requests.add('moa', request('job_valid') as RequestJobData, { jobId: 'job_valid' });
    const job = await settled(queues.requests, 'job_valid');
    expect(await job.getState()).toBe('completed');
    expect(fake.requests.map((entry) => entry.model).sort()).toEqual(['aggregator', 'alpha', 'beta']);
    expect(fake.requests.some((entry) => entry.model.includes(EVIL_MODEL))).toBe(false);
  });

  it("puts no forged name in the worker's metrics", async () => {
    const text = await (await fetch(`http://127.0.0.1:${worker.metricsPort}/metrics`)).text();
    expect(text).not.toContain(EVIL_PRESET);
    expect(text).not.toContain(EVIL_MODEL);
    expect(text).not.toContain('evil');
    expect(text).not.toMatch(/="job_/);
    expect(text).toMatch(/moa_jobs_finished_total\{preset="duo",outcome="completed"\} 1/);
    const presets = new Set([...text.matchAll(/preset="([^"]*)"/g)].map((match) => match[1]));
    expect([...presets]).toEqual(['duo']);
    const models = new Set([...text.matchAll(/model="([^"]*)"/g)].map((match) => match[1]));
    expect([...models].sort()).toEqual(['fake/aggregator', 'fake/alpha', 'fake/beta']);
  });
});
