import { once } from 'node:events';
import type { Server } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import express from 'express';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { errorHandler } from './middleware/error-handler.js';
import { createApiServer, type ApiServerOptions } from './http-server.js';

/** A small app in the API's shape: a JSON route, a streamed upload route, a slow answer. */
function testApp() {
  const app = express();
  app.post('/v1/files', (request, response) => {
    let bytes = 0;
    request.on('data', (chunk: Buffer) => (bytes += chunk.length));
    request.on('end', () => response.json({ bytes }));
  });
  app.use(express.json());
  app.post('/v1/jobs', (request, response) => {
    response.status(202).json({ received: request.body });
  });
  app.get('/slow', (_request, response) => {
    setTimeout(() => response.json({ ok: true }), 1500);
  });
  app.get('/ok', (_request, response) => {
    response.json({ ok: true });
  });
  app.use(errorHandler(pino({ level: 'silent' })));
  return app;
}

const servers: Server[] = [];
const sockets: Socket[] = [];
afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.destroy();
  await Promise.all(
    servers.splice(0).map(
      (server) =>
        new Promise((resolve) => {
          server.closeAllConnections();
          server.close(resolve);
        }),
    ),
  );
});

async function listen(options: ApiServerOptions): Promise<number> {
  const server = createApiServer(testApp(), options);
  servers.push(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

/** A raw client: what it received and when the server closed it. */
interface RawClient {
  socket: Socket;
  received(): string;
  closed: Promise<number>;
}

async function rawClient(port: number): Promise<RawClient> {
  const started = Date.now();
  const socket = connect(port, '127.0.0.1');
  sockets.push(socket);
  let data = '';
  socket.on('data', (chunk) => (data += chunk.toString()));
  socket.on('error', () => undefined);
  const closed = new Promise<number>((resolve) => socket.once('close', () => resolve(Date.now() - started)));
  await once(socket, 'connect');
  return { socket, received: () => data, closed };
}

/** Writes `chunk` every `everyMs` until the socket closes or `stopAfter` writes were made. */
function trickle(socket: Socket, chunk: string, everyMs: number, stopAfter = Infinity): Promise<void> {
  return new Promise((resolve) => {
    let sent = 0;
    const timer = setInterval(() => {
      if (socket.destroyed || !socket.writable || sent >= stopAfter) {
        clearInterval(timer);
        resolve();
        return;
      }
      socket.write(chunk);
      sent += 1;
    }, everyMs);
    socket.once('close', () => {
      clearInterval(timer);
      resolve();
    });
  });
}

function bodyOf(raw: string): unknown {
  return JSON.parse(raw.slice(raw.indexOf('\r\n\r\n') + 4));
}

describe('the API server against slow clients (real sockets)', () => {
  it('cuts a client that trickles its headers at headersTimeout', async () => {
    const port = await listen({ headersTimeoutMs: 500, bodyTimeoutMs: 5000, uploadTimeoutMs: 5000 });
    const client = await rawClient(port);
    client.socket.write('GET /ok HTTP/1.1\r\nHost: test\r\n');
    void trickle(client.socket, 'x-slow: 1\r\n', 100);
    const closedAfter = await client.closed;
    const raw = client.received();
    expect(raw).toMatch(/^HTTP\/1\.1 408 /);
    expect(raw).toMatch(/\r\nx-should-retry: true\r\n/i);
    expect(bodyOf(raw)).toEqual({
      error: {
        message: expect.any(String),
        type: 'invalid_request_error',
        param: null,
        code: 'request_timeout',
      },
    });
    expect(closedAfter).toBeGreaterThanOrEqual(450);
    expect(closedAfter).toBeLessThan(2500);
  });

  it('answers a malformed request with a 400 error object, x-should-retry: false', async () => {
    const port = await listen({});
    const client = await rawClient(port);
    client.socket.write('NOT HTTP AT ALL\r\n\r\n');
    await client.closed;
    const raw = client.received();
    expect(raw).toMatch(/^HTTP\/1\.1 400 /);
    expect(raw).toMatch(/\r\nx-should-retry: false\r\n/i);
    expect(bodyOf(raw)).toMatchObject({ error: { code: 'invalid_http', type: 'invalid_request_error' } });
  });

  it('cuts a client that sends nothing at headersTimeout', async () => {
    const port = await listen({ headersTimeoutMs: 500, bodyTimeoutMs: 5000, uploadTimeoutMs: 5000 });
    const client = await rawClient(port);
    const closedAfter = await client.closed;
    expect(closedAfter).toBeLessThan(2500);
  });

  it('cuts a trickling JSON body at bodyTimeout with a 408 error object', async () => {
    const port = await listen({ headersTimeoutMs: 5000, bodyTimeoutMs: 600, uploadTimeoutMs: 10_000 });
    const client = await rawClient(port);
    client.socket.write(
      'POST /v1/jobs HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{',
    );
    void trickle(client.socket, ' ', 100);
    const closedAfter = await client.closed;
    const raw = client.received();
    expect(raw).toMatch(/^HTTP\/1\.1 408 /);
    expect(raw).toMatch(/\r\nx-should-retry: true\r\n/i);
    expect(raw).toMatch(/\r\nconnection: close\r\n/i);
    expect(bodyOf(raw)).toEqual({
      error: {
        message: expect.stringMatching(/did not arrive/),
        type: 'invalid_request_error',
        param: null,
        code: 'request_timeout',
      },
    });
    expect(closedAfter).toBeGreaterThanOrEqual(550);
    expect(closedAfter).toBeLessThan(3500);
  });

  it('lets an upload trickle past bodyTimeout while within uploadTimeout', async () => {
    const port = await listen({ headersTimeoutMs: 5000, bodyTimeoutMs: 300, uploadTimeoutMs: 10_000 });
    const client = await rawClient(port);
    client.socket.write(
      'POST /v1/files HTTP/1.1\r\nHost: test\r\nContent-Type: application/octet-stream\r\nContent-Length: 12\r\nConnection: close\r\n\r\n',
    );
    // 12 bytes over ~1.2 s: four times bodyTimeout.
    await trickle(client.socket, 'abc', 300, 4);
    await client.closed;
    expect(client.received()).toMatch(/^HTTP\/1\.1 200 /);
    expect(bodyOf(client.received())).toEqual({ bytes: 12 });
  });

  it('cuts an upload at its own limit', async () => {
    const port = await listen({ headersTimeoutMs: 5000, bodyTimeoutMs: 200, uploadTimeoutMs: 800 });
    const client = await rawClient(port);
    client.socket.write(
      'POST /v1/files?purpose=batch HTTP/1.1\r\nHost: test\r\nContent-Type: application/octet-stream\r\nContent-Length: 1000\r\n\r\n',
    );
    void trickle(client.socket, 'a', 100);
    const closedAfter = await client.closed;
    expect(client.received()).toMatch(/^HTTP\/1\.1 408 /);
    expect(closedAfter).toBeGreaterThanOrEqual(750);
    expect(closedAfter).toBeLessThan(4000);
  });

  it('never cuts a request whose body arrived, however long its answer takes', async () => {
    const port = await listen({ headersTimeoutMs: 5000, bodyTimeoutMs: 300, uploadTimeoutMs: 300 });
    const response = await fetch(`http://127.0.0.1:${port}/slow`);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ ok: true });
    const posted = await fetch(`http://127.0.0.1:${port}/v1/jobs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ a: 1 }),
    });
    expect(posted.status).toBe(202);
  });

  it('refuses connections past maxConnections, and accepts again once one closes', async () => {
    const port = await listen({ headersTimeoutMs: 20_000, maxConnections: 3 });
    const held = await Promise.all([rawClient(port), rawClient(port), rawClient(port)]);
    // Let the server count them before the next one arrives.
    await new Promise((resolve) => setTimeout(resolve, 100));
    const extra = await rawClient(port);
    extra.socket.write('GET /ok HTTP/1.1\r\nHost: test\r\n\r\n');
    const closedAfter = await extra.closed;
    expect(extra.received()).toBe('');
    expect(closedAfter).toBeLessThan(1000);

    held[0]!.socket.destroy();
    await held[0]!.closed;
    await new Promise((resolve) => setTimeout(resolve, 100));
    const again = await rawClient(port);
    again.socket.write('GET /ok HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n');
    await again.closed;
    expect(again.received()).toMatch(/^HTTP\/1\.1 200 /);
  });
});
