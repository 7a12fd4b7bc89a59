import { batchItemRequestId } from '@moa-queue/contract';
import { pollUntil } from '@moa-queue/test-support';
import type request from 'supertest';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startMoaStack, type MoaStack } from '../support/moa-stack.js';
import type { KEYS } from './keys.js';
import { asTenant, KEY_OPTIONS } from './keys.js';

type Who = keyof typeof KEYS;
const USER = [{ role: 'user', content: 'What is a mixture of agents?' }];

/**
 * Two tenants (alpha, beta) and an admin on one stack with a real worker:
 * every object alpha creates is invisible to beta — exactly as an unknown
 * id, for every verb — and visible to the admin.
 */
describe('tenants', () => {
  let stack: MoaStack;
  const as = (who: keyof typeof KEYS) => asTenant(() => stack.app, who);
  /** Alpha's objects. */
  const alpha = { jobId: '', runningJobId: '', chatJobId: '', fileId: '', batchId: '', outputFileId: '' };

  beforeAll(async () => {
    stack = await startMoaStack({
      name: 'security-tenants',
      redisUrl: inject('redisUrl'),
      workers: 1,
      app: KEY_OPTIONS,
    });
    const job = await as('alpha')
      .post('/v1/jobs')
      .send({ preset: 'three', messages: USER, metadata: { team: 'alpha' } });
    expect(job.status).toBe(202);
    alpha.jobId = job.body.id;
    const chat = await as('alpha').post('/v1/chat/completions').send({ model: 'three', messages: USER });
    expect(chat.status).toBe(200);
    alpha.chatJobId = String(chat.headers['x-moa-job-id']);
    const lines = [0, 1, 2].map((index) =>
      JSON.stringify({
        custom_id: `item-${index}`,
        method: 'POST',
        url: '/v1/chat/completions',
        body: { model: 'three', messages: [{ role: 'user', content: `prompt ${index}` }] },
      }),
    );
    const file = await as('alpha')
      .post('/v1/files')
      .field('purpose', 'batch')
      .attach('file', Buffer.from(`${lines.join('\n')}\n`), { filename: 'données-α.jsonl' });
    expect(file.status).toBe(200);
    alpha.fileId = file.body.id;
    const batch = await as('alpha')
      .post('/v1/batches')
      .send({ input_file_id: alpha.fileId, endpoint: '/v1/chat/completions', completion_window: '24h' });
    expect(batch.status).toBe(200);
    alpha.batchId = batch.body.id;
    const finished = await pollUntil(
      async () => (await as('alpha').get(`/v1/batches/${alpha.batchId}`)).body,
      (body) => body.status === 'completed',
      60_000,
    );
    alpha.outputFileId = finished.output_file_id;
    await pollUntil(
      async () => (await as('alpha').get(`/v1/jobs/${alpha.jobId}`)).body.status,
      (status) => status === 'completed',
      60_000,
    );
    // One job still running while beta tries to cancel it: its calls are held at the provider.
    stack.fake.setBehaviour('alpha', { hold: true });
    const running = await as('alpha').post('/v1/jobs').send({ preset: 'three', messages: USER });
    alpha.runningJobId = running.body.id;
    await pollUntil(
      () => stack.fake.held(),
      (held) => held > 0,
      30_000,
    );
  });

  afterAll(async () => {
    stack?.fake.setBehaviour('alpha', undefined);
    stack?.fake.release();
    await stack?.stop();
  });

  /** The body an unknown id of the same kind gets, with the id put back in: "exactly as unknown". */
  async function expectUnknown(
    response: request.Response,
    unknown: () => Promise<request.Response>,
    id: string,
    unknownId: string,
  ) {
    const reference = await unknown();
    expect(reference.status).toBe(404);
    expect(response.status).toBe(404);
    expect(response.body).toEqual(JSON.parse(JSON.stringify(reference.body).replaceAll(unknownId, id)));
  }

  const unknownJob = 'job_000000000000000000000000';
  const unknownFile = 'file-000000000000000000000000';
  const unknownBatch = 'batch_000000000000000000000000';

  it("answers beta's read, follow and cancel of alpha's jobs exactly as an unknown id", async () => {
    for (const id of [alpha.jobId, alpha.chatJobId, alpha.runningJobId]) {
      await expectUnknown(
        await as('beta').get(`/v1/jobs/${id}`),
        () => as('beta').get(`/v1/jobs/${unknownJob}`),
        id,
        unknownJob,
      );
      await expectUnknown(
        await as('beta').get(`/v1/jobs/${id}/events`),
        () => as('beta').get(`/v1/jobs/${unknownJob}/events`),
        id,
        unknownJob,
      );
      await expectUnknown(
        await as('beta').delete(`/v1/jobs/${id}`),
        () => as('beta').delete(`/v1/jobs/${unknownJob}`),
        id,
        unknownJob,
      );
    }
    // Beta's cancel changed nothing: alpha's running job still runs.
    expect((await as('alpha').get(`/v1/jobs/${alpha.runningJobId}`)).body.status).toBe('running');
  });

  it("hides the items of alpha's batch from beta, as jobs", async () => {
    const itemId = batchItemRequestId(alpha.batchId, 0);
    expect((await as('alpha').get(`/v1/jobs/${itemId}`)).status).toBe(200);
    await expectUnknown(
      await as('beta').get(`/v1/jobs/${itemId}`),
      () => as('beta').get(`/v1/jobs/${unknownJob}`),
      itemId,
      unknownJob,
    );
  });

  it("answers beta's read, download and delete of alpha's files exactly as an unknown id", async () => {
    for (const id of [alpha.fileId, alpha.outputFileId]) {
      await expectUnknown(
        await as('beta').get(`/v1/files/${id}`),
        () => as('beta').get(`/v1/files/${unknownFile}`),
        id,
        unknownFile,
      );
      await expectUnknown(
        await as('beta').get(`/v1/files/${id}/content`),
        () => as('beta').get(`/v1/files/${unknownFile}/content`),
        id,
        unknownFile,
      );
      await expectUnknown(
        await as('beta').delete(`/v1/files/${id}`),
        () => as('beta').delete(`/v1/files/${unknownFile}`),
        id,
        unknownFile,
      );
      expect((await as('alpha').get(`/v1/files/${id}`)).status).toBe(200);
    }
    // Nor can beta run a batch over alpha's input file.
    const batch = await as('beta')
      .post('/v1/batches')
      .send({ input_file_id: alpha.fileId, endpoint: '/v1/chat/completions', completion_window: '24h' });
    expect(batch.status).toBe(404);
    expect(batch.body.error).toMatchObject({ param: 'input_file_id', code: 'file_not_found' });
  });

  it("answers beta's read and cancel of alpha's batch exactly as an unknown id", async () => {
    await expectUnknown(
      await as('beta').get(`/v1/batches/${alpha.batchId}`),
      () => as('beta').get(`/v1/batches/${unknownBatch}`),
      alpha.batchId,
      unknownBatch,
    );
    await expectUnknown(
      await as('beta').post(`/v1/batches/${alpha.batchId}/cancel`),
      () => as('beta').post(`/v1/batches/${unknownBatch}/cancel`),
      alpha.batchId,
      unknownBatch,
    );
  });

  it('lists only the caller’s own batches, files and console jobs; the admin lists all, with owners', async () => {
    const betaFile = await as('beta')
      .post('/v1/files')
      .field('purpose', 'batch')
      .attach('file', Buffer.from('{"custom_id":"x"}\n'), { filename: 'beta.jsonl' });
    expect(betaFile.status).toBe(200);
    const ids = (body: { data: { id: string }[] }) => body.data.map((entry) => entry.id);

    expect(ids((await as('beta').get('/v1/batches')).body)).not.toContain(alpha.batchId);
    expect(ids((await as('alpha').get('/v1/batches')).body)).toContain(alpha.batchId);
    expect(ids((await as('admin').get('/v1/batches')).body)).toContain(alpha.batchId);

    const betaFiles = ids((await as('beta').get('/v1/files')).body);
    expect(betaFiles).toEqual([betaFile.body.id]);
    const alphaFiles = ids((await as('alpha').get('/v1/files')).body);
    expect(alphaFiles).toEqual(expect.arrayContaining([alpha.fileId, alpha.outputFileId]));
    expect(alphaFiles).not.toContain(betaFile.body.id);
    expect(ids((await as('admin').get('/v1/files')).body)).toEqual(
      expect.arrayContaining([alpha.fileId, betaFile.body.id]),
    );

    expect((await as('beta').get('/console/api/jobs')).body.data).toEqual([]);
    const alphaJobs = (await as('alpha').get('/console/api/jobs')).body.data as {
      id: string;
      owner: string;
    }[];
    expect(alphaJobs.map((job) => job.id)).toEqual(
      expect.arrayContaining([alpha.jobId, alpha.chatJobId, alpha.runningJobId]),
    );
    expect(new Set(alphaJobs.map((job) => job.owner))).toEqual(new Set(['alpha']));
    const adminJobs = (await as('admin').get('/console/api/jobs?limit=200')).body.data as {
      id: string;
      owner: string;
    }[];
    expect(adminJobs.find((job) => job.id === alpha.jobId)?.owner).toBe('alpha');
    await expectUnknown(
      await as('beta').get(`/console/api/jobs/${alpha.jobId}`),
      () => as('beta').get(`/console/api/jobs/${unknownJob}`),
      alpha.jobId,
      unknownJob,
    );
    expect((await as('admin').get(`/console/api/jobs/${alpha.jobId}`)).status).toBe(200);
  });

  it("keeps idempotency keys per tenant: the same key from beta is beta's own job", async () => {
    const send = (who: Who) =>
      as(who).post('/v1/jobs').set('idempotency-key', 'same-key').send({ preset: 'three', messages: USER });
    const first = await send('alpha');
    const other = await send('beta');
    expect(other.status).toBe(202);
    expect(other.body.id).not.toBe(first.body.id);
    expect(other.headers['idempotent-replayed']).toBeUndefined();
    expect((await send('alpha')).body.id).toBe(first.body.id);
  });

  it("lets the admin read, download and cancel alpha's objects", async () => {
    const job = await as('admin').get(`/v1/jobs/${alpha.jobId}`);
    expect(job.status).toBe(200);
    expect(job.body.metadata).toEqual({ team: 'alpha' });
    const content = await as('admin').get(`/v1/files/${alpha.fileId}/content`);
    expect(content.status).toBe(200);
    expect(content.headers['content-disposition']).toBe(
      `attachment; filename="donn_es-_.jsonl"; filename*=UTF-8''donn%C3%A9es-%CE%B1.jsonl`,
    );
    const cancelled = await as('admin').delete(`/v1/jobs/${alpha.runningJobId}`);
    expect(cancelled.status).toBe(200);
    expect(cancelled.body.status).toBe('cancelled');
  });
});
