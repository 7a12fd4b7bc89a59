import { createServer, type Server } from 'node:http';
import type { LookupAddress } from 'node:dns';
import type { AddressInfo } from 'node:net';
import {
  createMoaQueues,
  deliveriesKey,
  newRequestId,
  REQUESTS_QUEUE,
  type RequestJobData,
  type RequestResult,
  type WebhookDeliveryView,
  type WebhookJobData,
} from '@moa-queue/contract';
import { builtInConfig, type TenantSettings } from '@moa-queue/moa';
import { pollUntil, uniquePrefix, verifyWebhook, type ReceivedWebhook } from '@moa-queue/test-support';
import { UnrecoverableError, Worker, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createWorkerMetrics } from '../metrics.js';
import type { Resolver } from './deliver-webhook.js';
import { createWebhookProcessor, type WebhookDependencies } from './webhook-processor.js';

const secretOf = (text: string) => `whsec_${Buffer.from(text).toString('base64')}`;
const FALLBACK = secretOf('fallback-secret-of-processor-tests');
const ALPHA = secretOf('alpha-secret-of-processor-tests-32');
const BETA = secretOf('beta-secret-of-processor-tests-32b');
const DEFAULT = secretOf('default-tenant-secret-for-the-test');
const TENANTS: Record<string, TenantSettings> = {
  alpha: { webhookSecret: ALPHA },
  beta: { webhookSecret: BETA },
  gamma: {},
};

const redis = new Redis(inject('redisUrl'), { maxRetriesPerRequest: null });
const prefix = uniquePrefix('webhook-processor');
const queues = createMoaQueues({ connection: redis, prefix, providers: [] });
const config = builtInConfig();
const metrics = createWorkerMetrics();

/** Finishes every request at once, as if the orchestrator had run it. */
const completer = new Worker<RequestJobData, RequestResult>(
  REQUESTS_QUEUE,
  async () => ({
    status: 'completed',
    output: 'the answer',
    usage: { promptTokens: 0, completionTokens: 0 },
    costUsd: 0,
    error: null,
  }),
  { connection: redis.duplicate({ maxRetriesPerRequest: null }), prefix },
);

let server: Server;
let port: number;
const received: ReceivedWebhook[] = [];
let answer = 200;

beforeAll(async () => {
  server = createServer((request, response) => {
    let body = '';
    request.on('data', (chunk) => (body += chunk));
    request.on('end', () => {
      received.push({ headers: request.headers, body });
      if (request.url === '/hang') return; // never answers
      response.writeHead(answer).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  await completer.close();
  await queues.close();
  const keys = await redis.keys(`${prefix}:*`);
  if (keys.length > 0) await redis.del(...keys);
  redis.disconnect();
});

/** A finished request of `tenant` (none: a request from before tenants) with a webhook to `url`. */
async function finishedRequest(tenant: string | undefined, url: string): Promise<string> {
  const preset = config.presets[config.defaultPreset]!;
  const data = {
    requestId: newRequestId(),
    ...(tenant === undefined ? {} : { tenant }),
    preset,
    messages: [{ role: 'user' as const, content: 'hello' }],
    metadata: {},
    webhook: { url },
    createdAt: Date.now(),
    source: 'jobs' as const,
  } as RequestJobData;
  await queues.requests.add('moa', data, { jobId: data.requestId });
  await pollUntil(
    () => queues.requests.getJobState(data.requestId),
    (state) => state === 'completed',
    10_000,
  );
  return data.requestId;
}

/** The slice of a BullMQ job the processor uses. */
function webhookJob(
  requestId: string,
  url: string,
  options: { attemptsMade?: number; timestamp?: number } = {},
) {
  return {
    id: `${requestId}-webhook`,
    data: { requestId, url },
    attemptsMade: options.attemptsMade ?? 0,
    timestamp: options.timestamp ?? Date.now(),
    moveToDelayed: async () => undefined,
  } as unknown as Job<WebhookJobData, void>;
}

function processor(overrides: Partial<WebhookDependencies> = {}) {
  return createWebhookProcessor({
    queues,
    redis,
    settings: { allowHosts: ['127.0.0.1'], retryScheduleMs: [1], retryHorizonMs: 60_000 },
    secret: FALLBACK,
    tenants: TENANTS,
    metrics,
    logger: pino({ level: 'silent' }),
    timeoutMs: 500,
    ...overrides,
  });
}

async function deliveries(requestId: string): Promise<WebhookDeliveryView[]> {
  const entries = await redis.lrange(deliveriesKey(prefix, requestId), 0, -1);
  return entries.map((entry) => JSON.parse(entry) as WebhookDeliveryView);
}

/** Delivers a request's webhook to the loopback receiver; returns what the receiver got. */
async function deliver(tenant: string | undefined, overrides: Partial<WebhookDependencies> = {}) {
  answer = 200;
  const url = `http://127.0.0.1:${port}/in`;
  const requestId = await finishedRequest(tenant, url);
  await processor(overrides)(webhookJob(requestId, url));
  const delivery = received.find((entry) => JSON.parse(entry.body).id === requestId);
  if (!delivery) throw new Error('not delivered');
  return { requestId, delivery };
}

/** Whether `secret` signed the delivery, checked with the standardwebhooks package. */
function verifies(secret: string, delivery: ReceivedWebhook): boolean {
  return verifyWebhook(secret, delivery) !== undefined;
}

describe('webhook processor: signing secrets', () => {
  it("signs with the owner tenant's own secret", async () => {
    const { requestId, delivery } = await deliver('alpha');
    expect(verifies(ALPHA, delivery)).toBe(true);
    expect(verifies(BETA, delivery)).toBe(false);
    expect(verifies(FALLBACK, delivery)).toBe(false);
    expect(await deliveries(requestId)).toEqual([
      { attempt: 1, at: expect.any(Number), status_code: 200, error: null },
    ]);
  });

  it('signs a tenant without a secret of its own, or not in the config, with MOA_WEBHOOK_SECRET', async () => {
    for (const tenant of ['gamma', 'not-configured']) {
      const { delivery } = await deliver(tenant);
      expect(verifies(FALLBACK, delivery)).toBe(true);
      expect(verifies(ALPHA, delivery)).toBe(false);
    }
  });

  it('counts a request from before tenants as tenant default', async () => {
    const { delivery } = await deliver(undefined, {
      tenants: { ...TENANTS, default: { webhookSecret: DEFAULT } },
    });
    expect(verifies(DEFAULT, delivery)).toBe(true);
    const { delivery: fallback } = await deliver(undefined);
    expect(verifies(FALLBACK, fallback)).toBe(true);
  });

  it('never takes a secret from an inherited property', async () => {
    const inherited = Object.assign(Object.create({ evil: { webhookSecret: ALPHA } }) as object, TENANTS);
    for (const tenant of ['evil', 'constructor', '__proto__']) {
      const { delivery } = await deliver(tenant, { tenants: inherited });
      expect(verifies(FALLBACK, delivery)).toBe(true);
    }
  });

  it('without any secret for the tenant, fails for good and records why', async () => {
    const url = `http://127.0.0.1:${port}/in`;
    const requestId = await finishedRequest('gamma', url);
    const before = received.length;
    const error = await processor({ secret: undefined })(webhookJob(requestId, url)).catch(
      (caught: unknown) => caught,
    );
    expect(error).toBeInstanceOf(UnrecoverableError);
    expect(received.length).toBe(before);
    expect(await deliveries(requestId)).toEqual([
      {
        attempt: 1,
        at: expect.any(Number),
        status_code: null,
        error: 'no signing secret: the tenant has no webhookSecret and MOA_WEBHOOK_SECRET is not set',
      },
    ]);
    // A tenant with its own secret is still served.
    const { delivery } = await deliver('alpha', { secret: undefined });
    expect(verifies(ALPHA, delivery)).toBe(true);
  });
});

describe('webhook processor: why a delivery failed', () => {
  it('records "HTTP 500" on a non-2xx answer and retries; null once it succeeds', async () => {
    const url = `http://127.0.0.1:${port}/in`;
    const requestId = await finishedRequest('alpha', url);
    const process = processor();
    answer = 500;
    const error = await process(webhookJob(requestId, url)).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(Error);
    expect(error).not.toBeInstanceOf(UnrecoverableError);
    answer = 200;
    await process(webhookJob(requestId, url, { attemptsMade: 1 }));
    expect(await deliveries(requestId)).toEqual([
      { attempt: 1, at: expect.any(Number), status_code: 500, error: 'HTTP 500' },
      { attempt: 2, at: expect.any(Number), status_code: 200, error: null },
    ]);
    // The second delivery's body lists the first attempt, with its reason.
    const bodies = received.filter((entry) => JSON.parse(entry.body).id === requestId);
    expect(JSON.parse(bodies[1]!.body).webhook.deliveries).toEqual([
      { attempt: 1, at: expect.any(Number), status_code: 500, error: 'HTTP 500' },
    ]);
  });

  it('records "connection refused" and retries', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(closed.address() as AddressInfo).port}/in`;
    await new Promise((resolve) => closed.close(resolve));
    const requestId = await finishedRequest('alpha', url);
    const error = await processor()(webhookJob(requestId, url)).catch((caught: unknown) => caught);
    expect(error).not.toBeInstanceOf(UnrecoverableError);
    expect(await deliveries(requestId)).toEqual([
      { attempt: 1, at: expect.any(Number), status_code: null, error: 'connection refused' },
    ]);
  });

  it('records a timeout and retries', async () => {
    const url = `http://127.0.0.1:${port}/hang`;
    const requestId = await finishedRequest('alpha', url);
    const error = await processor({ timeoutMs: 300 })(webhookJob(requestId, url)).catch(
      (caught: unknown) => caught,
    );
    expect(error).not.toBeInstanceOf(UnrecoverableError);
    expect(await deliveries(requestId)).toEqual([
      { attempt: 1, at: expect.any(Number), status_code: null, error: 'timeout after 300 ms' },
    ]);
  });

  it('records why a literal address was blocked, and gives up', async () => {
    const url = `http://127.0.0.2:${port}/in?token=secret-token`;
    const requestId = await finishedRequest('alpha', url);
    const error = await processor()(webhookJob(requestId, url)).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(UnrecoverableError);
    expect(await deliveries(requestId)).toEqual([
      {
        attempt: 1,
        at: expect.any(Number),
        status_code: null,
        error: 'blocked: 127.0.0.2 is a loopback address (127.0.0.0/8)',
      },
    ]);
  });

  it('records why a resolved host was blocked (injected resolver: no DNS, no connection)', async () => {
    const asked: string[] = [];
    const resolver: Resolver = async (host) => {
      asked.push(host);
      return [{ address: '169.254.169.254', family: 4 } satisfies LookupAddress];
    };
    const url = 'http://metadata.test/latest';
    const requestId = await finishedRequest('beta', url);
    const error = await processor({ resolver })(webhookJob(requestId, url)).catch(
      (caught: unknown) => caught,
    );
    expect(error).toBeInstanceOf(UnrecoverableError);
    expect(asked).toEqual(['metadata.test']);
    const [entry] = await deliveries(requestId);
    expect(entry?.error).toBe(
      'blocked: metadata.test resolves to 169.254.169.254, a link-local address (169.254.0.0/16)',
    );
  });

  it('records giving up past the retry horizon', async () => {
    const url = `http://127.0.0.1:${port}/in`;
    const requestId = await finishedRequest('alpha', url);
    const before = received.length;
    const error = await processor()(
      webhookJob(requestId, url, { attemptsMade: 5, timestamp: Date.now() - 120_000 }),
    ).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(UnrecoverableError);
    expect(received.length).toBe(before);
    expect(await deliveries(requestId)).toEqual([
      {
        attempt: 6,
        at: expect.any(Number),
        status_code: null,
        error: 'gave up after 60000 ms of retries',
      },
    ]);
  });

  it('never records the secret or the payload', async () => {
    const everything = (await redis.keys(`${prefix}:moa-webhook-deliveries:*`)).sort();
    expect(everything.length).toBeGreaterThan(5);
    for (const key of everything) {
      for (const entry of await redis.lrange(key, 0, -1)) {
        for (const secret of [FALLBACK, ALPHA, BETA, DEFAULT]) {
          expect(entry).not.toContain(secret.slice('whsec_'.length));
        }
        expect(entry).not.toContain('the answer');
        expect(entry).not.toContain('secret-token');
      }
    }
  });
});
