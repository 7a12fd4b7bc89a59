import { isIP } from 'node:net';

/**
 * Which addresses a webhook may reach (DESIGN §4): only public unicast ones.
 * Loopback, private, link-local (cloud metadata lives there), shared,
 * multicast, documentation, benchmarking, reserved and transition ranges are
 * refused unless `webhooks.allowHosts` exempts them. The worker checks every
 * address a host resolves to at connect time; the API refuses a literal
 * address (or `localhost`) at submit with {@link literalWebhookAddressBlocked}.
 *
 * Pure functions: nothing here resolves a name or opens a socket.
 */

/** A range of the block list: what it is, for the reason shown to users. */
interface BlockedRange {
  family: 4 | 6;
  cidr: string;
  /** Completes "10.0.0.5 is …", e.g. "a private address". */
  kind: string;
  network: bigint;
  prefix: number;
}

/** The IPv4 ranges, most specific first (the first match names the reason). */
const IPV4_RANGES: [cidr: string, kind: string][] = [
  ['0.0.0.0/8', 'a "this network" address'],
  ['10.0.0.0/8', 'a private address'],
  ['100.64.0.0/10', 'a shared (carrier-grade NAT) address'],
  ['127.0.0.0/8', 'a loopback address'],
  ['169.254.0.0/16', 'a link-local address'],
  ['172.16.0.0/12', 'a private address'],
  ['192.0.0.0/24', 'an IETF protocol assignment address'],
  ['192.0.2.0/24', 'a documentation address'],
  ['192.88.99.0/24', 'a 6to4 relay anycast address'],
  ['192.168.0.0/16', 'a private address'],
  ['198.18.0.0/15', 'a benchmarking address'],
  ['198.51.100.0/24', 'a documentation address'],
  ['203.0.113.0/24', 'a documentation address'],
  ['224.0.0.0/4', 'a multicast address'],
  ['255.255.255.255/32', 'the broadcast address'],
  ['240.0.0.0/4', 'a reserved address'],
];

/**
 * The IPv6 ranges, most specific first. IPv4-mapped addresses
 * (`::ffff:0:0/96`) are not listed: they are judged by the IPv4 rules of the
 * address they carry. Ranges that embed an IPv4 address in some other way
 * (IPv4-compatible, NAT64, 6to4, Teredo) are blocked whole, whatever they
 * embed: they are deprecated or gateway-dependent, and an embedded public
 * address is always reachable through its plain IPv4 form. Anything outside
 * 2000::/3, the only block IANA hands out for global unicast, is refused as
 * reserved.
 */
const IPV6_RANGES: [cidr: string, kind: string][] = [
  ['::/128', 'the unspecified address'],
  ['::1/128', 'a loopback address'],
  ['::/96', 'an IPv4-compatible IPv6 address (deprecated)'],
  ['::ffff:0:0:0/96', 'an IPv4-translated IPv6 address'],
  ['64:ff9b::/96', 'a NAT64 address'],
  ['64:ff9b:1::/48', 'a local-use NAT64 address'],
  ['100::/64', 'a discard-only address'],
  ['2001::/32', 'a Teredo address'],
  ['2001:2::/48', 'a benchmarking address'],
  ['2001:10::/28', 'an ORCHID address (deprecated)'],
  ['2001:20::/28', 'an ORCHIDv2 address'],
  ['2001:db8::/32', 'a documentation address'],
  ['2002::/16', 'a 6to4 address'],
  ['3fff::/20', 'a documentation address'],
  ['5f00::/16', 'an SRv6 SID address'],
  ['fc00::/7', 'a unique local (private) address'],
  ['fe80::/10', 'a link-local address'],
  ['fec0::/10', 'a site-local address (deprecated)'],
  ['ff00::/8', 'a multicast address'],
];

/** IPv6 global unicast: everything else is special-purpose or unassigned. */
const GLOBAL_UNICAST = '2000::/3';

/** `::ffff:0:0/96`: an IPv4 address seen through an IPv6 socket. */
const IPV4_MAPPED = '::ffff:0:0/96';

/** A parsed IP address: its family and its value as a 32- or 128-bit integer. */
interface ParsedAddress {
  family: 4 | 6;
  value: bigint;
}

function parseIpv4(address: string): bigint {
  return address.split('.').reduce((value, part) => (value << 8n) | BigInt(Number(part)), 0n);
}

function parseIpv6(address: string): bigint {
  let text = address.split('%')[0]!.toLowerCase();
  // A trailing dotted quad (`::ffff:1.2.3.4`) is the last two groups.
  if (text.includes('.')) {
    const cut = text.lastIndexOf(':');
    const v4 = Number(parseIpv4(text.slice(cut + 1)));
    text = `${text.slice(0, cut + 1)}${(v4 >>> 16).toString(16)}:${(v4 & 0xffff).toString(16)}`;
  }
  const [head = '', tail] = text.split('::');
  const headGroups = head ? head.split(':') : [];
  const tailGroups = tail ? tail.split(':') : [];
  const groups =
    tail === undefined
      ? headGroups
      : [...headGroups, ...Array<string>(8 - headGroups.length - tailGroups.length).fill('0'), ...tailGroups];
  return groups.reduce((value, group) => (value << 16n) | BigInt(parseInt(group, 16)), 0n);
}

/** Parses an IPv4 or IPv6 address (brackets and an IPv6 zone allowed); undefined when it is not one. */
function parseAddress(address: string): ParsedAddress | undefined {
  const bare = address.startsWith('[') && address.endsWith(']') ? address.slice(1, -1) : address;
  const family = isIP(bare);
  if (family === 4) return { family: 4, value: parseIpv4(bare) };
  if (family === 6) return { family: 6, value: parseIpv6(bare) };
  return undefined;
}

function parseCidr(cidr: string): { family: 4 | 6; network: bigint; prefix: number } | undefined {
  const [base = '', prefixText, ...rest] = cidr.split('/');
  const parsed = parseAddress(base);
  if (!parsed || rest.length > 0) return undefined;
  const bits = parsed.family === 4 ? 32 : 128;
  if (prefixText !== undefined && !/^\d{1,3}$/.test(prefixText)) return undefined;
  const prefix = prefixText === undefined ? bits : Number(prefixText);
  if (prefix > bits) return undefined;
  return { family: parsed.family, network: parsed.value, prefix };
}

function inRange(address: ParsedAddress, range: { family: 4 | 6; network: bigint; prefix: number }): boolean {
  if (address.family !== range.family) return false;
  const shift = BigInt((address.family === 4 ? 32 : 128) - range.prefix);
  return address.value >> shift === range.network >> shift;
}

function compileRanges(entries: [string, string][]): BlockedRange[] {
  return entries.map(([cidr, kind]) => ({ cidr, kind, ...parseCidr(cidr)! }));
}

const BLOCKED_V4 = compileRanges(IPV4_RANGES);
const BLOCKED_V6 = compileRanges(IPV6_RANGES);
const GLOBAL_UNICAST_RANGE = parseCidr(GLOBAL_UNICAST)!;
const IPV4_MAPPED_RANGE = parseCidr(IPV4_MAPPED)!;

/** The IPv4 address an IPv4-mapped IPv6 address (`::ffff:a00:5`) carries, if it is one. */
function mappedIpv4(address: ParsedAddress): ParsedAddress | undefined {
  if (!inRange(address, IPV4_MAPPED_RANGE)) return undefined;
  return { family: 4, value: address.value & 0xffffffffn };
}

function formatIpv4(value: bigint): string {
  return [24n, 16n, 8n, 0n].map((shift) => String((value >> shift) & 0xffn)).join('.');
}

/** Why an address is blocked: the matching range, and the IPv4 address judged when it was mapped. */
interface Verdict {
  kind: string;
  cidr: string;
  mappedTo?: string;
}

function verdictOf(address: ParsedAddress): Verdict | undefined {
  const mapped = mappedIpv4(address);
  if (mapped) {
    const inner = verdictOf(mapped);
    return inner ? { ...inner, mappedTo: formatIpv4(mapped.value) } : undefined;
  }
  const ranges = address.family === 4 ? BLOCKED_V4 : BLOCKED_V6;
  const range = ranges.find((candidate) => inRange(address, candidate));
  if (range) return { kind: range.kind, cidr: range.cidr };
  if (address.family === 6 && !inRange(address, GLOBAL_UNICAST_RANGE)) {
    return { kind: 'a reserved address', cidr: `outside ${GLOBAL_UNICAST}` };
  }
  return undefined;
}

/**
 * Why webhooks may not reach `address`, as a sentence; undefined when the
 * address is public. With `host`, the sentence says the host resolved to it.
 * Something that is not an IP address is blocked too.
 *
 * @example blockedAddressReason('10.0.0.5') // '10.0.0.5 is a private address (10.0.0.0/8)'
 * @example blockedAddressReason('::ffff:a00:5') // '::ffff:a00:5 maps to 10.0.0.5, a private address (10.0.0.0/8)'
 * @example blockedAddressReason('10.0.0.5', 'hooks.example') // 'hooks.example resolves to 10.0.0.5, a private address (10.0.0.0/8)'
 */
export function blockedAddressReason(address: string, host?: string): string | undefined {
  const parsed = parseAddress(address);
  const subject = host !== undefined && host !== address ? `${host} resolves to ${address}, which` : address;
  if (!parsed) return `${subject} is not an IP address`;
  const verdict = verdictOf(parsed);
  if (!verdict) return undefined;
  const what = `${verdict.kind} (${verdict.cidr})`;
  if (verdict.mappedTo) return `${subject} maps to ${verdict.mappedTo}, ${what}`;
  return host !== undefined && host !== address
    ? `${host} resolves to ${address}, ${what}`
    : `${address} is ${what}`;
}

/** True when webhooks may not reach `address` (see {@link blockedAddressReason}); true for a non-address. */
export function isBlockedAddress(address: string): boolean {
  return blockedAddressReason(address) !== undefined;
}

/** Compiled `webhooks.allowHosts`: host names, addresses and CIDRs exempt from the block. */
export interface AllowList {
  /** True when `host` is listed by name, or `address` (an IP address) lies in a listed address or CIDR. */
  allows(host: string, address: string): boolean;
}

/** Host names compare case-insensitively, without brackets or a trailing dot. */
function normalizeHost(host: string): string {
  const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  return bare.toLowerCase().replace(/\.$/, '');
}

/**
 * Compiles `webhooks.allowHosts` entries such as `hooks.internal`,
 * `10.1.2.3`, `10.0.0.0/8`, `::1` or `fd00::/8`. An IPv4 entry also covers
 * the IPv4-mapped form of its addresses. Throws on a malformed CIDR.
 */
export function compileAllowList(entries: readonly string[]): AllowList {
  const names = new Set<string>();
  const ranges: { family: 4 | 6; network: bigint; prefix: number }[] = [];
  for (const entry of entries) {
    const trimmed = entry.trim();
    const range = parseCidr(trimmed);
    if (range) ranges.push(range);
    else if (trimmed.includes('/')) throw new Error(`webhooks.allowHosts: "${entry}" is not a valid CIDR`);
    else names.add(normalizeHost(trimmed));
  }
  return {
    allows(host, address) {
      if (names.has(normalizeHost(host))) return true;
      const parsed = parseAddress(address);
      if (!parsed) return false;
      const mapped = mappedIpv4(parsed);
      return ranges.some(
        (range) => inRange(parsed, range) || (mapped !== undefined && inRange(mapped, range)),
      );
    },
  };
}

/** `localhost` and its subdomains, which resolve to loopback (RFC 6761 §6.3). */
function isLocalhostName(host: string): boolean {
  const name = normalizeHost(host);
  return name === 'localhost' || name.endsWith('.localhost');
}

/**
 * The submit-time check of a webhook URL: a human reason when its host is a
 * literal IP address that the worker's guard would refuse, or `localhost`;
 * undefined otherwise. The host is read by the WHATWG URL parser, so every
 * spelling it normalises counts (`http://2130706433/`, `http://0x7f.1/`,
 * `http://127.1/` are all 127.0.0.1; `[::ffff:127.0.0.1]` is IPv4-mapped).
 * Host names are not resolved here: the worker checks them at connect time.
 * A URL that does not parse or is not http(s) is left to the caller's own
 * validation (undefined).
 *
 * @param allowHosts `webhooks.allowHosts`, or the {@link AllowList} compiled from it
 * @example literalWebhookAddressBlocked('http://10.0.0.5/hook', [])
 * // 'the webhook host 10.0.0.5 is a private address (10.0.0.0/8)'
 */
export function literalWebhookAddressBlocked(
  url: string,
  allowHosts: readonly string[] | AllowList,
): string | undefined {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return undefined;
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') return undefined;
  const host = normalizeHost(parsed.hostname);
  const allowList = 'allows' in allowHosts ? allowHosts : compileAllowList(allowHosts);
  if (isIP(host)) {
    const reason = blockedAddressReason(host);
    if (!reason || allowList.allows(host, host)) return undefined;
    return `the webhook host ${reason}`;
  }
  if (isLocalhostName(host)) {
    // It may resolve to either loopback address; refuse only when neither is allowed.
    if (allowList.allows(host, '127.0.0.1') || allowList.allows(host, '::1')) return undefined;
    return `the webhook host ${host} is a loopback host name`;
  }
  return undefined;
}
