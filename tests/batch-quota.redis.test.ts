import { pollUntil } from '@moa-queue/test-support';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { KEYS } from './security/keys.js';
import { asTenant, KEY_OPTIONS } from './security/keys.js';
import { batchInput } from './support/batch-input.js';
import { startMoaStack, type MoaStack } from './support/moa-stack.js';

type Who = keyof typeof KEYS;

/**
 * `maxActiveBatchItems`: a tenant's batch items not yet ended, over all of
 * its batches, derived from the batches themselves at each `POST
 * /v1/batches`. The provider holds every aggregator call, so items stay
 * active until the test lets them end. Alpha may have 10, beta 20.
 */
describe('the maxActiveBatchItems quota', () => {
  let stack: MoaStack;
  const as = (who: keyof typeof KEYS) => asTenant(() => stack.app, who);

  beforeAll(async () => {
    stack = await startMoaStack({
      name: 'batch-quota',
      redisUrl: inject('redisUrl'),
      workers: 1,
      app: KEY_OPTIONS,
      configure: (file) => ({
        ...file,
        quotas: { maxActiveBatchItems: 10 },
        tenants: { beta: { quotas: { maxActiveBatchItems: 20 } } },
      }),
    });
    stack.fake.setBehaviour('aggregator', { hold: true });
  });
  afterAll(async () => {
    stack?.fake.setBehaviour('aggregator', undefined);
    stack?.fake.release();
    await stack?.stop();
  });

  const upload = async (who: Who, lines: number, tag: string): Promise<string> => {
    const response = await as(who)
      .post('/v1/files')
      .field('purpose', 'batch')
      .attach('file', Buffer.from(`${batchInput(lines, tag)}\n`), `${tag}.jsonl`);
    expect(response.status).toBe(200);
    return response.body.id as string;
  };
  const createBatch = (who: Who, fileId: string) =>
    as(who)
      .post('/v1/batches')
      .send({ input_file_id: fileId, endpoint: '/v1/chat/completions', completion_window: '24h' });
  const waitForStatus = (who: Who, id: string, statuses: string[]) =>
    pollUntil(
      async () => (await as(who).get(`/v1/batches/${id}`)).body as { status: string },
      (batch) => statuses.includes(batch.status),
    );

  it('refuses a batch that would pass the quota with 429 and Retry-After; ended items free it', async () => {
    const eight = await createBatch('alpha', await upload('alpha', 8, 'eight'));
    expect(eight.status).toBe(200);
    expect(eight.body.status).toBe('validating');

    // 8 active (counted from the file's lines while validating) + 5 > 10.
    const fiveFile = await upload('alpha', 5, 'five');
    const refused = await createBatch('alpha', fiveFile);
    expect(refused.status).toBe(429);
    expect(refused.body.error).toMatchObject({ code: 'quota_active_batch_items', type: 'rate_limit_error' });
    expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0);
    expect(refused.headers['x-should-retry']).toBe('true');
    // Exactly at the quota is allowed.
    const two = await createBatch('alpha', await upload('alpha', 2, 'two'));
    expect(two.status).toBe(200);

    // Beta has its own quota: alpha's items do not count.
    const betaFirst = await createBatch('beta', await upload('beta', 8, 'beta-a'));
    const betaSecond = await createBatch('beta', await upload('beta', 12, 'beta-b'));
    expect([betaFirst.status, betaSecond.status]).toEqual([200, 200]);
    expect((await createBatch('beta', await upload('beta', 1, 'beta-c'))).status).toBe(429);

    // Validated and running (held): counted from their totals now.
    await waitForStatus('alpha', eight.body.id as string, ['in_progress']);
    await waitForStatus('alpha', two.body.id as string, ['in_progress']);
    expect((await createBatch('alpha', await upload('alpha', 1, 'one'))).status).toBe(429);

    // A cancelled batch no longer counts: 2 active + 5 fits.
    expect((await as('alpha').post(`/v1/batches/${eight.body.id}/cancel`)).status).toBe(200);
    await waitForStatus('alpha', eight.body.id as string, ['cancelled']);
    const five = await createBatch('alpha', fiveFile);
    expect(five.status).toBe(200);
    expect((await createBatch('alpha', await upload('alpha', 4, 'four'))).status).toBe(429);

    // Items that end free their share: once everything has run, alpha may submit again.
    stack.fake.setBehaviour('aggregator', undefined);
    stack.fake.release();
    for (const id of [two.body.id, five.body.id, betaFirst.body.id, betaSecond.body.id] as string[]) {
      const owner: Who = id === betaFirst.body.id || id === betaSecond.body.id ? 'beta' : 'alpha';
      await waitForStatus(owner, id, ['completed']);
    }
    const again = await createBatch('alpha', await upload('alpha', 10, 'ten'));
    expect(again.status).toBe(200);
  });
});
