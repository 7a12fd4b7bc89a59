import { pollUntil } from '@moa-queue/test-support';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { KEYS } from './security/keys.js';
import { asTenant, KEY_OPTIONS } from './security/keys.js';
import { startMoaStack, type MoaStack } from './support/moa-stack.js';

const USER = [{ role: 'user', content: 'Hold on.' }];

/**
 * Per-tenant quotas on a stack whose provider holds every call until
 * released, so "active" is a fact of the test, not a race: alpha may have 2
 * active jobs and 1000 bytes of files; beta's own setting gives it 3 jobs.
 */
describe('quotas per tenant', () => {
  let stack: MoaStack;
  const as = (who: keyof typeof KEYS) => asTenant(() => stack.app, who);

  beforeAll(async () => {
    stack = await startMoaStack({
      name: 'quotas',
      redisUrl: inject('redisUrl'),
      workers: 1,
      app: KEY_OPTIONS,
      configure: (file) => ({
        ...file,
        quotas: { maxActiveJobs: 2, maxFileBytes: 1000 },
        tenants: { beta: { quotas: { maxActiveJobs: 3 } } },
      }),
    });
    stack.fake.setBehaviour('alpha', { hold: true });
  });

  afterAll(async () => {
    stack?.fake.setBehaviour('alpha', undefined);
    stack?.fake.release();
    await stack?.stop();
  });

  const submit = (who: keyof typeof KEYS) =>
    as(who).post('/v1/jobs').send({ preset: 'three', messages: USER });

  it('refuses a job past maxActiveJobs with 429 quota_active_jobs and Retry-After, per tenant', async () => {
    const accepted = [await submit('alpha'), await submit('alpha')];
    expect(accepted.map((response) => response.status)).toEqual([202, 202]);
    const refused = await submit('alpha');
    expect(refused.status).toBe(429);
    expect(refused.body.error).toMatchObject({ code: 'quota_active_jobs', type: 'rate_limit_error' });
    expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0);
    // A chat completion is an active job too.
    const chat = await as('alpha').post('/v1/chat/completions').send({ model: 'three', messages: USER });
    expect(chat.status).toBe(429);
    expect(chat.body.error.code).toBe('quota_active_jobs');
    // Beta has a quota of its own, and alpha's use does not touch it.
    const beta = [await submit('beta'), await submit('beta'), await submit('beta'), await submit('beta')];
    expect(beta.map((response) => response.status)).toEqual([202, 202, 202, 429]);
  });

  it('frees a slot when a job ends, with nobody removing it: the next request finds it ended', async () => {
    // Every held call answers: all five accepted jobs complete.
    await pollUntil(
      async () => {
        stack.fake.setBehaviour('alpha', undefined);
        stack.fake.release();
        const list = await as('alpha').get('/console/api/jobs');
        return (list.body.data as { status: string }[]).map((job) => job.status);
      },
      (statuses) => statuses.length === 2 && statuses.every((status) => status === 'completed'),
      60_000,
    );
    expect((await submit('alpha')).status).toBe(202);
    expect((await submit('alpha')).status).toBe(202);
  });

  it('refuses an upload past maxFileBytes with 429 quota_file_bytes and keeps nothing of it', async () => {
    const upload = (bytes: number, name: string) =>
      as('alpha')
        .post('/v1/files')
        .field('purpose', 'batch')
        .attach('file', Buffer.from(`${'x'.repeat(bytes - 1)}\n`), { filename: name });
    const first = await upload(600, 'first.jsonl');
    expect(first.status).toBe(200);
    const second = await upload(600, 'second.jsonl');
    expect(second.status).toBe(429);
    expect(second.body.error).toMatchObject({ code: 'quota_file_bytes', type: 'rate_limit_error' });
    expect(second.headers['retry-after']).toBeDefined();
    const listed = (await as('alpha').get('/v1/files')).body.data as { id: string }[];
    expect(listed.map((file) => file.id)).toEqual([first.body.id]);
    // Other tenants have their own quota.
    const beta = await as('beta')
      .post('/v1/files')
      .field('purpose', 'batch')
      .attach('file', Buffer.from(`${'y'.repeat(599)}\n`), { filename: 'beta.jsonl' });
    expect(beta.status).toBe(200);
    // Deleting frees the room.
    expect((await as('alpha').delete(`/v1/files/${first.body.id}`)).status).toBe(200);
    expect((await upload(600, 'third.jsonl')).status).toBe(200);
    // One that would pass the quota is refused, and not kept.
    const over = await upload(500, 'fourth.jsonl');
    expect(over.status).toBe(429);
    expect((await as('alpha').get('/v1/files')).body.data).toHaveLength(1);
  });
});
