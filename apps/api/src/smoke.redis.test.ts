import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createMoaQueues } from '@moa-queue/contract';
import { builtInConfig } from '@moa-queue/moa';
import { uniquePrefix } from '@moa-queue/test-support';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createApp } from './app.js';

const MAX_BODY_BYTES = 4096;

const redis = new Redis(inject('redisUrl'), { maxRetriesPerRequest: null });
const config = builtInConfig();
const queues = createMoaQueues({
  connection: redis,
  prefix: uniquePrefix('api-smoke'),
  providers: Object.keys(config.providers),
});
const app = createApp({
  queues,
  redis,
  config,
  logger: pino({ level: 'silent' }),
  maxBodyBytes: MAX_BODY_BYTES,
});
let server: Server;
let baseUrl = '';

beforeAll(async () => {
  server = await new Promise<Server>((resolve, reject) => {
    const listening = app.listen(0, '127.0.0.1', (error?: Error) =>
      error ? reject(error) : resolve(listening),
    );
  });
  const { port } = server.address() as AddressInfo;
  baseUrl = `http://127.0.0.1:${port}`;
});

afterAll(async () => {
  await new Promise<void>((resolve, reject) => {
    server.close((error) => (error ? reject(error) : resolve()));
    server.closeAllConnections();
  });
  await queues.close();
  await redis.quit();
});

describe('the API over a real socket', () => {
  it('creates a job and reads it back', async () => {
    const created = await fetch(`${baseUrl}/v1/jobs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ preset: 'moa-lite', messages: [{ role: 'user', content: 'Hello over TCP' }] }),
    });
    expect(created.status).toBe(202);
    expect(created.headers.get('content-type')).toMatch(/^application\/json/);
    expect(created.headers.get('x-request-id')).toMatch(/^req_/);
    const job = (await created.json()) as { id: string; status: string; preset: string };
    expect(job).toMatchObject({ status: 'queued', preset: 'moa-lite' });
    expect(created.headers.get('location')).toBe(`/v1/jobs/${job.id}`);

    const read = await fetch(new URL(created.headers.get('location')!, baseUrl));
    expect(read.status).toBe(200);
    expect(await read.json()).toMatchObject({ id: job.id, object: 'moa.job', status: 'queued' });
  });

  it('answers a body over the limit with 413 and an error object', async () => {
    const response = await fetch(`${baseUrl}/v1/jobs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ messages: [{ role: 'user', content: 'x'.repeat(MAX_BODY_BYTES * 4) }] }),
    });
    expect(response.status).toBe(413);
    const body = (await response.json()) as { error: Record<string, unknown> };
    expect(Object.keys(body)).toEqual(['error']);
    expect(body.error).toMatchObject({
      type: 'invalid_request_error',
      param: null,
      code: 'request_too_large',
    });
  });

  it('answers a chunked body over the limit with 413 too', async () => {
    const chunk = new TextEncoder().encode('x'.repeat(1024));
    let sent = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent === 0)
          controller.enqueue(new TextEncoder().encode('{"messages":[{"role":"user","content":"'));
        if (sent >= 16) {
          controller.enqueue(new TextEncoder().encode('"}]}'));
          controller.close();
          return;
        }
        sent += 1;
        controller.enqueue(chunk);
      },
    });
    const response = await fetch(`${baseUrl}/v1/jobs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: stream,
      duplex: 'half',
    } as RequestInit);
    expect(response.status).toBe(413);
    expect(((await response.json()) as { error: { code: string } }).error.code).toBe('request_too_large');
  });

  it('still answers after the refusals', async () => {
    const response = await fetch(`${baseUrl}/healthz`);
    expect(response.status).toBe(200);
  });
});
