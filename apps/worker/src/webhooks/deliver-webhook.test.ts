import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { LookupAddress } from 'node:dns';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compileAllowList } from './address-policy.js';
import { deliverWebhook, type Resolver } from './deliver-webhook.js';
import { WebhookBlockedError } from './webhook-blocked-error.js';

/** A loopback receiver that records what it gets and answers as told. */
async function receiver(
  answer: (request: IncomingMessage) => { status: number; headers?: Record<string, string> },
) {
  const received: { headers: IncomingMessage['headers']; body: string }[] = [];
  const server: Server = createServer((request, response) => {
    let body = '';
    request.on('data', (chunk) => (body += chunk));
    request.on('end', () => {
      received.push({ headers: request.headers, body });
      const { status, headers } = answer(request);
      response.writeHead(status, headers).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, received, port: (server.address() as AddressInfo).port };
}

/** A resolver that answers from a table and records what it was asked: no DNS, no traffic. */
function tableResolver(table: Record<string, LookupAddress[]>): Resolver & { asked: string[] } {
  const asked: string[] = [];
  const resolve = async (host: string) => {
    asked.push(host);
    const addresses = table[host];
    if (!addresses) throw new Error(`no such host ${host}`);
    return addresses;
  };
  return Object.assign(resolve, { asked });
}

const v4 = (address: string): LookupAddress => ({ address, family: 4 });
const v6 = (address: string): LookupAddress => ({ address, family: 6 });

describe('deliverWebhook', () => {
  let ok: Awaited<ReturnType<typeof receiver>>;
  let redirect: Awaited<ReturnType<typeof receiver>>;
  beforeAll(async () => {
    ok = await receiver(() => ({ status: 204 }));
    redirect = await receiver(() => ({
      status: 302,
      headers: { location: `http://127.0.0.1:${ok.port}/moved` },
    }));
  });
  afterAll(async () => {
    await new Promise((resolve) => ok.server.close(resolve));
    await new Promise((resolve) => redirect.server.close(resolve));
  });

  const allowLoopback = compileAllowList(['127.0.0.1']);
  const body = JSON.stringify({ hello: 'world' });
  const headers = { 'content-type': 'application/json', 'webhook-id': 'msg_1' };

  it('delivers to an allow-listed loopback receiver resolved at connect time', async () => {
    const resolver = tableResolver({ 'hooks.test': [v4('127.0.0.1')] });
    const status = await deliverWebhook({
      url: `http://hooks.test:${ok.port}/in`,
      body,
      headers,
      allowList: allowLoopback,
      resolver,
    });
    expect(status).toBe(204);
    expect(resolver.asked).toEqual(['hooks.test']);
    expect(ok.received.at(-1)?.body).toBe(body);
    expect(ok.received.at(-1)?.headers['webhook-id']).toBe('msg_1');
  });

  it('refuses loopback beyond the allow list', async () => {
    const before = ok.received.length;
    await expect(
      deliverWebhook({ url: `http://127.0.0.1:${ok.port}/`, body, headers, allowList: compileAllowList([]) }),
    ).rejects.toBeInstanceOf(WebhookBlockedError);
    expect(ok.received.length).toBe(before);
  });

  it.each([
    '10.1.2.3',
    '172.16.5.4',
    '192.168.0.10',
    '127.0.0.2',
    '169.254.169.254',
    '[::1]',
    '[fc00::1]',
    '[fe80::1]',
  ])('refuses the literal address %s before connecting', async (host) => {
    const error = await deliverWebhook({
      url: `http://${host}:8080/`,
      body,
      headers,
      allowList: allowLoopback,
    }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(WebhookBlockedError);
  });

  it.each([
    ['a host resolving to 10/8', [v4('10.0.0.5')]],
    ['a host resolving to 172.16/12', [v4('172.20.1.1')]],
    ['a host resolving to 192.168/16', [v4('192.168.7.7')]],
    ['a host resolving to link-local', [v4('169.254.169.254')]],
    ['a host resolving to ::1', [v6('::1')]],
    ['a host resolving to fc00::/7', [v6('fd00::5')]],
    ['a host with one public and one private address', [v4('93.184.216.34'), v4('10.0.0.5')]],
  ])('refuses %s (checked at connect time, no connection made)', async (_name, addresses) => {
    const resolver = tableResolver({ 'internal.test': addresses });
    const error = await deliverWebhook({
      url: 'http://internal.test:8080/hook',
      body,
      headers,
      allowList: allowLoopback,
      resolver,
    }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(WebhookBlockedError);
    expect(resolver.asked).toEqual(['internal.test']);
  });

  it('does not follow redirects: a 302 is an answer, and its target is never called', async () => {
    const before = ok.received.length;
    const status = await deliverWebhook({
      url: `http://127.0.0.1:${redirect.port}/`,
      body,
      headers,
      allowList: allowLoopback,
    });
    expect(status).toBe(302);
    expect(redirect.received).toHaveLength(1);
    expect(ok.received.length).toBe(before);
  });

  it('refuses other protocols', async () => {
    await expect(
      deliverWebhook({ url: 'ftp://127.0.0.1/', body, headers, allowList: allowLoopback }),
    ).rejects.toThrow(/unsupported protocol/);
  });
});
