import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { request as httpRequest, type RequestOptions } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { isIP, type LookupFunction } from 'node:net';
import { blockedAddressReason, type AllowList } from '@moa-queue/contract';
import { WebhookBlockedError } from './webhook-blocked-error.js';
import { WebhookTimeoutError } from './webhook-timeout-error.js';

/** Resolves a host name to every address it has (injectable for tests). */
export type Resolver = (host: string) => Promise<LookupAddress[]>;

/** The system resolver: every A and AAAA record, as a connection would see them. */
export const systemResolver: Resolver = (host) =>
  new Promise((resolve, reject) => {
    dnsLookup(host, { all: true, verbatim: true }, (error, addresses) =>
      error ? reject(error) : resolve(addresses),
    );
  });

/** Options of {@link deliverWebhook}. */
export interface DeliverOptions {
  url: string;
  body: string;
  headers: Record<string, string>;
  allowList: AllowList;
  /** @defaultValue the system resolver */
  resolver?: Resolver;
  /** Limit on the whole delivery: resolving, connecting, sending and reading the answer. @defaultValue 10000 */
  timeoutMs?: number;
}

/**
 * Checks the addresses a host resolves to, at connect time: the socket
 * connects to exactly the address that was checked, so a DNS answer that
 * changes between check and connect (rebinding) cannot slip through.
 */
function guardedLookup(host: string, resolver: Resolver, allowList: AllowList): LookupFunction {
  return (_hostname, options, callback) => {
    resolver(host)
      .then((addresses) => {
        if (addresses.length === 0)
          throw Object.assign(new Error(`${host} has no address`), { code: 'ENODATA' });
        for (const entry of addresses) {
          const reason = blockedAddressReason(entry.address, host);
          if (reason && !allowList.allows(host, entry.address))
            throw new WebhookBlockedError(host, entry.address, reason);
        }
        const wanted = options.family === 4 || options.family === 6 ? options.family : undefined;
        const usable = wanted ? addresses.filter((entry) => entry.family === wanted) : addresses;
        if (options.all) callback(null, usable);
        else callback(null, usable[0]?.address ?? '', usable[0]?.family ?? 4);
      })
      .catch((error: Error) => callback(error as NodeJS.ErrnoException, '', 4));
  };
}

/**
 * POSTs one webhook and resolves with the response status. Redirects are
 * not followed (a 3xx is just a non-2xx answer), private targets are refused
 * with {@link WebhookBlockedError} before any connection is made, and a
 * delivery that takes longer than `timeoutMs` in all fails with
 * {@link WebhookTimeoutError}.
 */
export async function deliverWebhook(options: DeliverOptions): Promise<number> {
  const url = new URL(options.url);
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new Error(`unsupported protocol ${url.protocol}`);
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const resolver = options.resolver ?? systemResolver;
  if (isIP(host)) {
    const reason = blockedAddressReason(host);
    if (reason && !options.allowList.allows(host, host)) throw new WebhookBlockedError(host, host, reason);
  }
  const timeoutMs = options.timeoutMs ?? 10_000;
  const requestOptions: RequestOptions = {
    method: 'POST',
    headers: { ...options.headers, 'content-length': String(Buffer.byteLength(options.body)) },
    // An IP literal never goes through lookup; it was checked above.
    lookup: isIP(host) ? undefined : guardedLookup(host, resolver, options.allowList),
    agent: false,
  };
  const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    // One deadline for the whole exchange: a receiver that trickles its answer cannot hold a worker slot.
    const timer = setTimeout(() => {
      fail(new WebhookTimeoutError(timeoutMs));
      outgoing.destroy();
    }, timeoutMs);
    const fail = (error: Error) => {
      clearTimeout(timer);
      reject(error);
    };
    const outgoing = send(url, requestOptions, (response) => {
      response.resume();
      response.on('end', () => {
        clearTimeout(timer);
        resolve(response.statusCode ?? 0);
      });
      response.on('error', fail);
    });
    outgoing.on('error', fail);
    outgoing.end(options.body);
  });
}
