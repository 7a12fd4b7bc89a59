import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { jobView, newRequestId, readRequest, type JobView, type RequestJobData } from '@moa-queue/contract';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startMoaStack, WEBHOOK_SECRET, type MoaStack } from './support/moa-stack.js';

interface Delivery {
  headers: IncomingHttpHeaders;
  body: string;
  at: number;
}

describe('webhooks when a job ends', () => {
  let stack: MoaStack;
  let server: Server;
  let url: string;
  const deliveries: Delivery[] = [];
  let answers: number[] = [];

  beforeAll(async () => {
    stack = await startMoaStack({ name: 'webhooks', redisUrl: inject('redisUrl'), workers: 1 });
    server = createServer((request, response) => {
      let body = '';
      request.on('data', (chunk) => (body += chunk));
      request.on('end', () => {
        deliveries.push({ headers: request.headers, body, at: Date.now() });
        response.writeHead(answers.shift() ?? 200).end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks/moa`;
  });
  afterAll(async () => {
    server?.closeAllConnections();
    await new Promise((resolve) => server?.close(resolve));
    await stack?.stop();
  });

  /**
   * Queues a request owned by `tenant` straight onto the requests queue: the
   * API refuses a literal loopback webhook URL at submit, but a host name can
   * still resolve to one at delivery time, and that must be recorded too.
   */
  async function submitAs(tenant: string, webhookUrl: string): Promise<string> {
    const data: RequestJobData = {
      requestId: newRequestId(),
      tenant,
      preset: stack.config.presets.three!,
      messages: [{ role: 'user', content: `Notify ${tenant}.` }],
      metadata: {},
      webhook: { url: webhookUrl },
      createdAt: Date.now(),
      source: 'jobs',
    };
    await stack.queues.requests.add('moa', data, { jobId: data.requestId });
    return data.requestId;
  }

  /** The job object as stored, read without the API (whose view depends on the caller's tenant). */
  async function storedJob(jobId: string): Promise<JobView> {
    const snapshot = await readRequest(stack.queues, stack.redis, jobId);
    if (!snapshot) throw new Error(`no request ${jobId}`);
    return jobView(snapshot);
  }

  async function deliveriesFor(jobId: string, count: number): Promise<Delivery[]> {
    const deadline = Date.now() + 20_000;
    for (;;) {
      const mine = deliveries.filter((delivery) => JSON.parse(delivery.body).id === jobId);
      if (mine.length >= count) return mine;
      if (Date.now() > deadline) throw new Error(`only ${mine.length} deliveries for ${jobId}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  it('a receiver answering 500 then 200 gets two signed deliveries with one webhook-id', async () => {
    answers = [500, 200];
    const created = await stack.submit({
      messages: [{ role: 'user', content: 'Notify me.' }],
      webhook: { url },
      metadata: { order: '42' },
    });
    expect(created.webhook).toEqual({ url, deliveries: [] });
    const [first, second] = await deliveriesFor(created.id, 2);

    expect(first!.headers['webhook-id']).toBe(second!.headers['webhook-id']);
    expect(first!.headers['webhook-id']).toBe(`msg_${created.id}`);
    // The retry waited at least the first step of the schedule.
    expect(second!.at - first!.at).toBeGreaterThanOrEqual(300);
    const verifier = new Webhook(WEBHOOK_SECRET);
    for (const delivery of [first!, second!]) {
      const payload = verifier.verify(delivery.body, {
        'webhook-id': String(delivery.headers['webhook-id']),
        'webhook-timestamp': String(delivery.headers['webhook-timestamp']),
        'webhook-signature': String(delivery.headers['webhook-signature']),
      }) as { id: string; status: string; object: string; output: string; metadata: Record<string, string> };
      expect(payload).toMatchObject({
        id: created.id,
        object: 'moa.job',
        status: 'completed',
        metadata: { order: '42' },
      });
      expect(payload.output).toBeTruthy();
    }

    // The job object lists both attempts.
    let job = await stack.get(created.id);
    for (let waited = 0; (job.webhook?.deliveries.length ?? 0) < 2 && waited < 5000; waited += 50) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      job = await stack.get(created.id);
    }
    expect(
      job.webhook?.deliveries.map((delivery) => [delivery.attempt, delivery.status_code, delivery.error]),
    ).toEqual([
      [1, 500, 'HTTP 500'],
      [2, 200, null],
    ]);
    await new Promise((resolve) => setTimeout(resolve, 800));
    expect(deliveries.filter((delivery) => JSON.parse(delivery.body).id === created.id)).toHaveLength(2);
  });

  it('a failed job is delivered too, with its error', async () => {
    answers = [];
    stack.fake.setBehaviour('dead', { failStatus: 400 });
    const created = await stack.submit({
      preset: 'all-dead',
      messages: [{ role: 'user', content: 'x' }],
      webhook: { url },
    });
    const [delivery] = await deliveriesFor(created.id, 1);
    const payload = JSON.parse(delivery!.body) as { status: string; error: { code: string } };
    expect(payload.status).toBe('failed');
    expect(payload.error.code).toBe('too_few_proposers');
  });

  it('a blocked target records why on the job, and is not retried', async () => {
    // 127.0.0.2 is loopback but not in allowHosts: refused before any connection.
    const blockedUrl = `http://127.0.0.2:${(server.address() as AddressInfo).port}/hooks/moa`;
    const jobId = await submitAs('team-a', blockedUrl);
    let job = await storedJob(jobId);
    for (let waited = 0; (job.webhook?.deliveries.length ?? 0) < 1 && waited < 20_000; waited += 50) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      job = await storedJob(jobId);
    }
    expect(job.status).toBe('completed');
    expect(job.webhook).toEqual({
      url: blockedUrl,
      deliveries: [
        {
          attempt: 1,
          at: expect.any(Number),
          status_code: null,
          error: 'blocked: 127.0.0.2 is a loopback address (127.0.0.0/8)',
        },
      ],
    });
    // Past the first retry step (300 ms), still one attempt, and nothing reached a receiver.
    await new Promise((resolve) => setTimeout(resolve, 800));
    expect((await storedJob(jobId)).webhook?.deliveries).toHaveLength(1);
    expect(deliveries.filter((delivery) => JSON.parse(delivery.body).id === jobId)).toHaveLength(0);
  });
});
