import { BlockList, isIP } from 'node:net';

/**
 * Ranges a webhook may never reach unless allowed on purpose: loopback,
 * private, link-local (cloud metadata lives there), CGNAT, multicast,
 * reserved and unspecified, in IPv4 and IPv6 (IPv4-mapped IPv6 included).
 */
const BLOCKED = new BlockList();
for (const [network, prefix] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const) {
  BLOCKED.addSubnet(network, prefix, 'ipv4');
}
for (const [network, prefix] of [
  ['::', 128],
  ['::1', 128],
  ['fc00::', 7],
  ['fe80::', 10],
  ['ff00::', 8],
  ['64:ff9b::', 96],
  ['2001:db8::', 32],
] as const) {
  BLOCKED.addSubnet(network, prefix, 'ipv6');
}

/** The IPv4 address inside an IPv4-mapped IPv6 address (`::ffff:10.0.0.1`), if it is one. */
function mappedIpv4(address: string): string | undefined {
  const match = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  return match?.[1];
}

/** True when an IP address is private, loopback, link-local or otherwise not public. */
export function isBlockedAddress(address: string): boolean {
  const mapped = mappedIpv4(address);
  if (mapped) return isBlockedAddress(mapped);
  const family = isIP(address);
  if (family === 0) return true;
  return BLOCKED.check(address, family === 4 ? 'ipv4' : 'ipv6');
}

/** Compiled `webhooks.allowHosts`: host names, addresses and CIDRs exempt from the block. */
export interface AllowList {
  allows(host: string, address: string): boolean;
}

/** Parses `webhooks.allowHosts` entries such as `hooks.internal`, `10.1.2.3` or `10.0.0.0/8`. */
export function compileAllowList(entries: string[]): AllowList {
  const names = new Set<string>();
  const ranges = new BlockList();
  for (const entry of entries) {
    const [network, prefix] = entry.split('/');
    const family = isIP(network ?? '');
    if (family === 0) {
      names.add(entry.toLowerCase());
    } else if (prefix === undefined) {
      ranges.addAddress(network!, family === 4 ? 'ipv4' : 'ipv6');
    } else {
      ranges.addSubnet(network!, Number(prefix), family === 4 ? 'ipv4' : 'ipv6');
    }
  }
  return {
    allows(host, address) {
      if (names.has(host.toLowerCase())) return true;
      const target = mappedIpv4(address) ?? address;
      const family = isIP(target);
      return family !== 0 && ranges.check(target, family === 4 ? 'ipv4' : 'ipv6');
    },
  };
}
