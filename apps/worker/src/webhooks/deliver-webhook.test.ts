import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { LookupAddress } from 'node:dns';
import { compileAllowList } from '@moa-queue/contract';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeDeliveryError } from './delivery-error.js';
import { deliverWebhook, type Resolver } from './deliver-webhook.js';
import { WebhookBlockedError } from './webhook-blocked-error.js';
import { WebhookTimeoutError } from './webhook-timeout-error.js';

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
    ['10.1.2.3', '10.1.2.3 is a private address (10.0.0.0/8)'],
    ['172.16.5.4', '172.16.5.4 is a private address (172.16.0.0/12)'],
    ['192.168.0.10', '192.168.0.10 is a private address (192.168.0.0/16)'],
    ['127.0.0.2', '127.0.0.2 is a loopback address (127.0.0.0/8)'],
    ['169.254.169.254', '169.254.169.254 is a link-local address (169.254.0.0/16)'],
    ['2130706434', '127.0.0.2 is a loopback address (127.0.0.0/8)'],
    ['[::1]', '::1 is a loopback address (::1/128)'],
    ['[fc00::1]', 'fc00::1 is a unique local (private) address (fc00::/7)'],
    ['[fe80::1]', 'fe80::1 is a link-local address (fe80::/10)'],
    ['[::ffff:10.0.0.1]', '::ffff:a00:1 maps to 10.0.0.1, a private address (10.0.0.0/8)'],
    ['[64:ff9b::a00:1]', '64:ff9b::a00:1 is a NAT64 address (64:ff9b::/96)'],
  ])('refuses the literal address %s before connecting', async (host, reason) => {
    const error = await deliverWebhook({
      url: `http://${host}:8080/`,
      body,
      headers,
      allowList: allowLoopback,
    }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(WebhookBlockedError);
    expect((error as WebhookBlockedError).reason).toBe(reason);
    expect(describeDeliveryError(error)).toBe(`blocked: ${reason}`);
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
    expect(describeDeliveryError(error)).toMatch(/^blocked: internal\.test resolves to \S+, (a|the) /);
    expect(resolver.asked).toEqual(['internal.test']);
  });

  it('names the address a host resolved to in the reason', async () => {
    const resolver = tableResolver({ 'internal.test': [v4('93.184.216.34'), v4('10.0.0.5')] });
    const error = await deliverWebhook({
      url: 'http://internal.test:8080/hook?token=abc',
      body,
      headers,
      allowList: allowLoopback,
      resolver,
    }).catch((caught: unknown) => caught);
    expect(describeDeliveryError(error)).toBe(
      'blocked: internal.test resolves to 10.0.0.5, a private address (10.0.0.0/8)',
    );
  });

  it.each([
    ['a NAT64 address', [v6('64:ff9b::a9fe:a9fe')]],
    ['an IPv4-mapped private address', [v6('::ffff:a00:5')]],
    ['a 6to4 address', [v6('2002:a00:5::1')]],
    ['a Teredo address', [v6('2001:0:4136:e378:8000:63bf:3fff:fdd2')]],
    ['a site-local address', [v6('fec0::1')]],
  ])('refuses a host resolving to %s', async (_name, addresses) => {
    const resolver = tableResolver({ 'internal.test': addresses });
    const error = await deliverWebhook({
      url: 'http://internal.test:8080/',
      body,
      headers,
      allowList: allowLoopback,
      resolver,
    }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(WebhookBlockedError);
  });

  it('lets webhooks.allowHosts exempt a host by name', async () => {
    const resolver = tableResolver({ 'hooks.test': [v4('127.0.0.1')] });
    const status = await deliverWebhook({
      url: `http://hooks.test:${ok.port}/in`,
      body,
      headers,
      allowList: compileAllowList(['hooks.test']),
      resolver,
    });
    expect(status).toBe(204);
  });

  it('a host without addresses fails as a network error, retried', async () => {
    const resolver = tableResolver({ 'empty.test': [] });
    const error = await deliverWebhook({
      url: 'http://empty.test:8080/',
      body,
      headers,
      allowList: allowLoopback,
      resolver,
    }).catch((caught: unknown) => caught);
    expect(error).not.toBeInstanceOf(WebhookBlockedError);
    expect(describeDeliveryError(error)).toBe('host has no address');
  });

  it('a closed port is "connection refused"', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const error = await deliverWebhook({
      url: `http://127.0.0.1:${port}/`,
      body,
      headers,
      allowList: allowLoopback,
    }).catch((caught: unknown) => caught);
    expect(describeDeliveryError(error)).toBe('connection refused');
  });

  it('a receiver that never answers times out, however it trickles', async () => {
    const silent = createServer((request, response) => {
      request.resume();
      // Headers at once, then a byte every 50 ms: an idle timeout alone would never fire.
      response.writeHead(200);
      const drip = setInterval(() => response.write('.'), 50);
      response.on('close', () => clearInterval(drip));
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    try {
      const started = Date.now();
      const error = await deliverWebhook({
        url: `http://127.0.0.1:${(silent.address() as AddressInfo).port}/`,
        body,
        headers,
        allowList: allowLoopback,
        timeoutMs: 300,
      }).catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(WebhookTimeoutError);
      expect(describeDeliveryError(error)).toBe('timeout after 300 ms');
      expect(Date.now() - started).toBeLessThan(5000);
    } finally {
      silent.closeAllConnections();
      await new Promise((resolve) => silent.close(resolve));
    }
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
