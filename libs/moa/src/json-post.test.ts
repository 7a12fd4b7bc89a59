import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { JsonPostConnectionError } from './errors/json-post-connection-error.js';
import { JsonPostTimeoutError } from './errors/json-post-timeout-error.js';
import { postJson } from './json-post.js';

const servers: Server[] = [];

afterEach(async () => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    server.close();
  }
});

/** A server on port 0 answering every request with `handle`; resolves with its URL. */
async function serve(handle: (request: IncomingMessage, body: string, response: ServerResponse) => void) {
  const server = createServer((request, response) => {
    let body = '';
    request.setEncoding('utf8');
    request.on('data', (chunk: string) => (body += chunk));
    request.on('end', () => handle(request, body, response));
  });
  servers.push(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/chat/completions`);
}

async function rejectionOf(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection');
}

describe('postJson', () => {
  it('posts the body with its headers and resolves with the status, headers and text of any answer', async () => {
    const seen: { method?: string; headers?: IncomingMessage['headers']; body?: string } = {};
    const url = await serve((request, body, response) => {
      Object.assign(seen, { method: request.method, headers: request.headers, body });
      response.writeHead(429, { 'content-type': 'application/json', 'retry-after': '2' });
      response.end('{"error":{"message":"slow down"}}');
    });
    const answer = await postJson(url, '{"model":"m"}', {
      headers: { authorization: 'Bearer k' },
      timeoutMs: 5000,
    });
    expect(seen).toMatchObject({
      method: 'POST',
      body: '{"model":"m"}',
      headers: { authorization: 'Bearer k', 'content-type': 'application/json', 'content-length': '13' },
    });
    expect(answer.status).toBe(429);
    expect(answer.headers.get('Retry-After')).toBe('2');
    expect(answer.text).toBe('{"error":{"message":"slow down"}}');
  });

  it('reads a compressed answer that a server sent anyway', async () => {
    const url = await serve((_request, _body, response) => {
      response.writeHead(200, { 'content-encoding': 'gzip' });
      response.end(gzipSync('{"ok":true}'));
    });
    expect((await postJson(url, '{}', { headers: {}, timeoutMs: 5000 })).text).toBe('{"ok":true}');
  });

  it('reuses one kept-alive connection for calls made one after another', async () => {
    const sockets = new Set<unknown>();
    const url = await serve((request, _body, response) => {
      sockets.add(request.socket);
      response.end('{}');
    });
    for (let call = 0; call < 3; call += 1) await postJson(url, '{}', { headers: {}, timeoutMs: 5000 });
    expect(sockets.size).toBe(1);
  });

  it('fails with JsonPostTimeoutError when the whole answer takes longer than the timeout', async () => {
    const url = await serve((_request, _body, response) => {
      response.writeHead(200);
      response.write('{"partial":'); // never ends
    });
    const error = await rejectionOf(postJson(url, '{}', { headers: {}, timeoutMs: 100 }));
    expect(error).toBeInstanceOf(JsonPostTimeoutError);
  });

  it("rejects with the signal's reason when it aborts, before or during the call", async () => {
    const url = await serve(() => undefined); // never answers
    const reason = new Error('cancelled');
    const before = AbortSignal.abort(reason);
    expect(await rejectionOf(postJson(url, '{}', { headers: {}, timeoutMs: 5000, signal: before }))).toBe(
      reason,
    );
    const controller = new AbortController();
    const pending = postJson(url, '{}', { headers: {}, timeoutMs: 5000, signal: controller.signal });
    controller.abort(reason);
    expect(await rejectionOf(pending)).toBe(reason);
  });

  it('fails with JsonPostConnectionError when nobody listens or the connection drops midway', async () => {
    const dropping = await serve((request, _body, response) => {
      response.writeHead(200, { 'content-length': '100' });
      response.write('{"cut":');
      setTimeout(() => request.socket.destroy(), 10);
    });
    expect(await rejectionOf(postJson(dropping, '{}', { headers: {}, timeoutMs: 5000 }))).toBeInstanceOf(
      JsonPostConnectionError,
    );
    const server = servers.pop()!;
    server.closeAllConnections();
    server.close();
    await once(server, 'close');
    expect(await rejectionOf(postJson(dropping, '{}', { headers: {}, timeoutMs: 5000 }))).toBeInstanceOf(
      JsonPostConnectionError,
    );
  });
});
