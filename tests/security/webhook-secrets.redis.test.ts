import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { verifyWebhook, type ReceivedWebhook } from '@moa-queue/test-support';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createApp } from '../../apps/api/src/app.js';
import { startMoaStack, WEBHOOK_SECRET, type MoaStack } from '../support/moa-stack.js';
import { KEY_OPTIONS, KEYS } from './keys.js';

/** Alpha signs with its own secret; beta has none and falls back to MOA_WEBHOOK_SECRET. */
const ALPHA_SECRET = `whsec_${Buffer.from('alpha-tenant-webhook-secret-for-tests').toString('base64')}`;

/** Whether `secret` signed the delivery, checked with the standardwebhooks package. */
function verifies(secret: string, delivery: ReceivedWebhook): boolean {
  return verifyWebhook(secret, delivery) !== undefined;
}

describe('webhooks per tenant', () => {
  let stack: MoaStack;
  let receiver: Server;
  let url = '';
  const received: ReceivedWebhook[] = [];

  beforeAll(async () => {
    stack = await startMoaStack({
      name: 'security-webhooks',
      redisUrl: inject('redisUrl'),
      workers: 1,
      app: KEY_OPTIONS,
      configure: (file) => ({ ...file, tenants: { alpha: { webhookSecret: ALPHA_SECRET } } }),
    });
    receiver = createServer((incoming, outgoing) => {
      let body = '';
      incoming.on('data', (chunk) => (body += chunk));
      incoming.on('end', () => {
        received.push({ headers: incoming.headers, body });
        outgoing.writeHead(200).end();
      });
    });
    receiver.listen(0, '127.0.0.1');
    await once(receiver, 'listening');
    url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hooks`;
  });

  afterAll(async () => {
    receiver?.closeAllConnections();
    await new Promise((resolve) => receiver?.close(resolve));
    await stack?.stop();
  });

  async function deliveryOf(jobId: string): Promise<ReceivedWebhook> {
    for (let waited = 0; waited < 30_000; waited += 50) {
      const found = received.find((delivery) => JSON.parse(delivery.body).id === jobId);
      if (found) return found;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    throw new Error(`no webhook for ${jobId}`);
  }

  const submit = (key: string, webhookUrl = url) =>
    request(stack.app)
      .post('/v1/jobs')
      .set('authorization', `Bearer ${key}`)
      .send({ preset: 'three', messages: [{ role: 'user', content: 'hi' }], webhook: { url: webhookUrl } });

  it("signs a tenant's webhooks with its own secret, so no other tenant's secret verifies them", async () => {
    const [alpha, beta] = await Promise.all([submit(KEYS.alpha), submit(KEYS.beta)]);
    expect([alpha.status, beta.status]).toEqual([202, 202]);
    const alphaDelivery = await deliveryOf(alpha.body.id);
    const betaDelivery = await deliveryOf(beta.body.id);
    expect(verifies(ALPHA_SECRET, alphaDelivery)).toBe(true);
    expect(verifies(WEBHOOK_SECRET, alphaDelivery)).toBe(false);
    // Beta has no secret of its own: MOA_WEBHOOK_SECRET signs its webhooks, never alpha's.
    expect(verifies(WEBHOOK_SECRET, betaDelivery)).toBe(true);
    expect(verifies(ALPHA_SECRET, betaDelivery)).toBe(false);
    const payload = verifyWebhook(ALPHA_SECRET, alphaDelivery);
    expect(payload).toMatchObject({ id: alpha.body.id, object: 'moa.job', status: 'completed' });
  });

  it('refuses webhooks at submit for a tenant with no secret when MOA_WEBHOOK_SECRET is unset', async () => {
    // The same queues and config, served by an API without MOA_WEBHOOK_SECRET.
    const app = createApp({
      queues: stack.queues,
      redis: stack.redis,
      config: stack.config,
      logger: pino({ level: 'silent' }),
      ...KEY_OPTIONS,
    });
    const post = (key: string) =>
      request(app)
        .post('/v1/jobs')
        .set('authorization', `Bearer ${key}`)
        .send({ messages: [{ role: 'user', content: 'hi' }], webhook: { url } });
    const beta = await post(KEYS.beta);
    expect(beta.status).toBe(400);
    expect(beta.body.error).toMatchObject({ param: 'webhook', code: 'webhooks_disabled' });
    expect((await post(KEYS.alpha)).status).toBe(202);
  });

  it.each([
    'http://10.0.0.5/hook',
    'http://169.254.169.254/latest/meta-data',
    'http://[::ffff:10.0.0.5]/hook',
    'http://[64:ff9b::a00:5]/hook',
    'http://[2002:a00:5::1]/hook',
    'http://[fec0::1]/hook',
    'http://167772165/hook',
    'http://0xa.0.0.5/hook',
    'http://127.0.0.2/hook',
  ])('refuses the literal address of %s at submit, naming webhook.url', async (target) => {
    // (The stack's allowHosts lists 127.0.0.1, its receiver's address; 127.0.0.2 is not listed.)
    // Only parsed, never connected to: the refusal happens before anything is queued.
    const response = await submit(KEYS.alpha, target);
    expect(response.status).toBe(400);
    expect(response.body.error).toMatchObject({ param: 'webhook.url', code: 'webhook_url_blocked' });
  });
});
