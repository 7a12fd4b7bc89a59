import { describe, expect, it } from 'vitest';
import {
  blockedAddressReason,
  compileAllowList,
  isBlockedAddress,
  literalWebhookAddressBlocked,
} from './webhook-address-policy.js';

describe('webhook address policy: blocked ranges', () => {
  // One row per range of the block list: an address inside it, and the range the reason names.
  it.each([
    ['0.0.0.0', '0.0.0.0/8', 'this network'],
    ['0.1.2.3', '0.0.0.0/8', 'this network'],
    ['10.0.0.5', '10.0.0.0/8', 'a private address'],
    ['10.255.255.255', '10.0.0.0/8', 'a private address'],
    ['100.64.0.1', '100.64.0.0/10', 'carrier-grade NAT'],
    ['100.127.255.254', '100.64.0.0/10', 'carrier-grade NAT'],
    ['127.0.0.1', '127.0.0.0/8', 'a loopback address'],
    ['127.8.9.10', '127.0.0.0/8', 'a loopback address'],
    ['169.254.169.254', '169.254.0.0/16', 'a link-local address'],
    ['172.16.0.1', '172.16.0.0/12', 'a private address'],
    ['172.31.255.254', '172.16.0.0/12', 'a private address'],
    ['192.0.0.8', '192.0.0.0/24', 'IETF protocol assignment'],
    ['192.0.2.1', '192.0.2.0/24', 'a documentation address'],
    ['192.88.99.1', '192.88.99.0/24', '6to4 relay'],
    ['192.168.1.1', '192.168.0.0/16', 'a private address'],
    ['198.18.0.1', '198.18.0.0/15', 'a benchmarking address'],
    ['198.19.255.255', '198.18.0.0/15', 'a benchmarking address'],
    ['198.51.100.7', '198.51.100.0/24', 'a documentation address'],
    ['203.0.113.9', '203.0.113.0/24', 'a documentation address'],
    ['224.0.0.1', '224.0.0.0/4', 'a multicast address'],
    ['239.255.255.250', '224.0.0.0/4', 'a multicast address'],
    ['255.255.255.255', '255.255.255.255/32', 'the broadcast address'],
    ['240.0.0.1', '240.0.0.0/4', 'a reserved address'],
    ['::', '::/128', 'the unspecified address'],
    ['::1', '::1/128', 'a loopback address'],
    ['0:0:0:0:0:0:0:1', '::1/128', 'a loopback address'],
    ['::8.8.8.8', '::/96', 'IPv4-compatible'],
    ['::a00:1', '::/96', 'IPv4-compatible'],
    ['::ffff:0:808:808', '::ffff:0:0:0/96', 'IPv4-translated'],
    ['64:ff9b::808:808', '64:ff9b::/96', 'a NAT64 address'],
    ['64:ff9b::10.0.0.1', '64:ff9b::/96', 'a NAT64 address'],
    ['64:ff9b:1::1', '64:ff9b:1::/48', 'local-use NAT64'],
    ['100::1', '100::/64', 'a discard-only address'],
    ['2001::1', '2001::/32', 'a Teredo address'],
    ['2001:0:4136:e378:8000:63bf:3fff:fdd2', '2001::/32', 'a Teredo address'],
    ['2001:2::1', '2001:2::/48', 'a benchmarking address'],
    ['2001:10::1', '2001:10::/28', 'ORCHID'],
    ['2001:20::1', '2001:20::/28', 'ORCHIDv2'],
    ['2001:db8::1', '2001:db8::/32', 'a documentation address'],
    ['2002:808:808::1', '2002::/16', 'a 6to4 address'],
    ['2002:a00:1::1', '2002::/16', 'a 6to4 address'],
    ['3fff::1', '3fff::/20', 'a documentation address'],
    ['5f00::1', '5f00::/16', 'SRv6'],
    ['fc00::1', 'fc00::/7', 'unique local'],
    ['fd12:3456::1', 'fc00::/7', 'unique local'],
    ['fe80::1', 'fe80::/10', 'a link-local address'],
    ['fe80::1%eth0', 'fe80::/10', 'a link-local address'],
    ['febf::1', 'fe80::/10', 'a link-local address'],
    ['fec0::1', 'fec0::/10', 'site-local'],
    ['ff02::1', 'ff00::/8', 'a multicast address'],
    ['4000::1', 'outside 2000::/3', 'a reserved address'],
    ['1::1', 'outside 2000::/3', 'a reserved address'],
  ])('blocks %s (%s)', (address, cidr, kind) => {
    expect(isBlockedAddress(address)).toBe(true);
    const reason = blockedAddressReason(address);
    expect(reason).toContain(`(${cidr})`);
    expect(reason).toContain(kind);
    expect(reason?.startsWith(`${address} is `)).toBe(true);
  });

  it.each([
    ['::ffff:10.0.0.1', '10.0.0.1', '10.0.0.0/8'],
    ['::ffff:a00:1', '10.0.0.1', '10.0.0.0/8'],
    ['::ffff:127.0.0.1', '127.0.0.1', '127.0.0.0/8'],
    ['::FFFF:7f00:1', '127.0.0.1', '127.0.0.0/8'],
    ['::ffff:169.254.169.254', '169.254.169.254', '169.254.0.0/16'],
    ['0:0:0:0:0:ffff:c0a8:101', '192.168.1.1', '192.168.0.0/16'],
    ['::ffff:0.0.0.0', '0.0.0.0', '0.0.0.0/8'],
  ])('judges the IPv4-mapped %s by the IPv4 rules of %s', (address, inner, cidr) => {
    expect(isBlockedAddress(address)).toBe(true);
    expect(blockedAddressReason(address)).toBe(
      `${address} maps to ${inner}, ${blockedAddressReason(inner)!.slice(inner.length + 4)}`,
    );
    expect(blockedAddressReason(address)).toContain(`(${cidr})`);
  });

  it.each(['::ffff:8.8.8.8', '::ffff:808:808', '::ffff:1.1.1.1'])(
    'allows the IPv4-mapped public address %s',
    (address) => {
      expect(blockedAddressReason(address)).toBeUndefined();
    },
  );

  it.each([
    '8.8.8.8',
    '1.1.1.1',
    '93.184.216.34',
    '9.255.255.255',
    '11.0.0.0',
    '100.63.255.255',
    '100.128.0.0',
    '126.255.255.255',
    '128.0.0.0',
    '169.253.255.255',
    '172.15.0.1',
    '172.32.0.1',
    '192.0.1.1',
    '192.169.0.1',
    '198.17.255.255',
    '198.20.0.0',
    '223.255.255.255',
    '2606:4700:4700::1111',
    '2001:4860:4860::8888',
    '2a00:1450:4001:81b::200e',
    '2001:1::1',
    '2003::1',
  ])('allows the public address %s', (address) => {
    expect(isBlockedAddress(address)).toBe(false);
    expect(blockedAddressReason(address)).toBeUndefined();
  });

  it('blocks what is not an IP address', () => {
    expect(isBlockedAddress('not-an-ip')).toBe(true);
    expect(blockedAddressReason('not-an-ip')).toBe('not-an-ip is not an IP address');
    expect(isBlockedAddress('')).toBe(true);
    expect(isBlockedAddress('10.0.0.256')).toBe(true);
  });

  it('names the host that resolved to a blocked address', () => {
    expect(blockedAddressReason('10.0.0.5', 'hooks.example')).toBe(
      'hooks.example resolves to 10.0.0.5, a private address (10.0.0.0/8)',
    );
    expect(blockedAddressReason('::ffff:a00:5', 'hooks.example')).toBe(
      'hooks.example resolves to ::ffff:a00:5, which maps to 10.0.0.5, a private address (10.0.0.0/8)',
    );
    expect(blockedAddressReason('10.0.0.5', '10.0.0.5')).toBe('10.0.0.5 is a private address (10.0.0.0/8)');
    expect(blockedAddressReason('8.8.8.8', 'dns.google')).toBeUndefined();
  });
});

describe('webhook address policy: allowHosts', () => {
  it('exempts allow-listed host names, addresses and CIDRs only', () => {
    const allowList = compileAllowList(['hooks.internal', '127.0.0.1', '10.20.0.0/16', 'fd00::/8']);
    expect(allowList.allows('hooks.internal', '10.0.0.1')).toBe(true);
    expect(allowList.allows('HOOKS.INTERNAL', '10.0.0.1')).toBe(true);
    expect(allowList.allows('hooks.internal.', '10.0.0.1')).toBe(true);
    expect(allowList.allows('other', '127.0.0.1')).toBe(true);
    expect(allowList.allows('other', '127.0.0.2')).toBe(false);
    expect(allowList.allows('other', '10.20.3.4')).toBe(true);
    expect(allowList.allows('other', '10.21.3.4')).toBe(false);
    expect(allowList.allows('other', '::ffff:10.20.3.4')).toBe(true);
    expect(allowList.allows('other', '::ffff:a14:304')).toBe(true);
    expect(allowList.allows('other', 'fd12::1')).toBe(true);
    expect(allowList.allows('other', 'fe80::1')).toBe(false);
    expect(allowList.allows('other', 'not-an-ip')).toBe(false);
  });

  it('accepts bracketed IPv6 entries and host-name entries that look like neither', () => {
    const allowList = compileAllowList(['[::1]', 'LocalHost', '64:ff9b::/96']);
    expect(allowList.allows('x', '::1')).toBe(true);
    expect(allowList.allows('localhost', '127.0.0.1')).toBe(true);
    expect(allowList.allows('x', '64:ff9b::a00:1')).toBe(true);
    expect(allowList.allows('x', '64:ff9b:1::1')).toBe(false);
  });

  it('refuses a malformed CIDR, naming it', () => {
    expect(() => compileAllowList(['10.0.0.0/33'])).toThrow(/"10\.0\.0\.0\/33" is not a valid CIDR/);
    expect(() => compileAllowList(['fd00::/129'])).toThrow(/not a valid CIDR/);
    expect(() => compileAllowList(['10.0.0.0/x'])).toThrow(/not a valid CIDR/);
    expect(() => compileAllowList(['hooks/8'])).toThrow(/not a valid CIDR/);
  });
});

describe('literalWebhookAddressBlocked', () => {
  it.each([
    ['http://10.0.0.5/hook', '10.0.0.5 is a private address (10.0.0.0/8)'],
    ['https://169.254.169.254/latest/meta-data', '169.254.169.254 is a link-local address (169.254.0.0/16)'],
    ['http://127.0.0.1:8080/', '127.0.0.1 is a loopback address (127.0.0.0/8)'],
    ['http://2130706433/', '127.0.0.1 is a loopback address'],
    ['http://0x7f.1/', '127.0.0.1 is a loopback address'],
    ['http://0x7f000001/', '127.0.0.1 is a loopback address'],
    ['http://017700000001/', '127.0.0.1 is a loopback address'],
    ['http://127.1/', '127.0.0.1 is a loopback address'],
    ['http://127.0.0.1./', '127.0.0.1 is a loopback address'],
    ['http://%31%32%37.0.0.1/', '127.0.0.1 is a loopback address'],
    ['http://\uff11\uff12\uff17.\uff10.\uff10.\uff11/', '127.0.0.1 is a loopback address'],
    ['http://0/', '0.0.0.0 is a "this network" address'],
    ['http://0xa9fea9fe/', '169.254.169.254 is a link-local address'],
    ['http://[::1]:9000/', '::1 is a loopback address (::1/128)'],
    ['http://[0:0:0:0:0:0:0:1]/', '::1 is a loopback address'],
    ['http://[::]/', ':: is the unspecified address'],
    ['http://[::ffff:127.0.0.1]/', '::ffff:7f00:1 maps to 127.0.0.1, a loopback address'],
    ['http://[::ffff:10.0.0.1]/', '::ffff:a00:1 maps to 10.0.0.1, a private address'],
    ['http://[64:ff9b::10.0.0.1]/', '64:ff9b::a00:1 is a NAT64 address'],
    ['http://[fd00::1]/', 'fd00::1 is a unique local (private) address'],
    ['http://[fe80::1]/', 'fe80::1 is a link-local address'],
    ['http://[2002:a00:1::]/', '2002:a00:1:: is a 6to4 address'],
    ['https://user:pass@10.1.2.3/x?token=abc', '10.1.2.3 is a private address'],
  ])('refuses %s', (url, reason) => {
    const answer = literalWebhookAddressBlocked(url, []);
    expect(answer).toContain(reason);
    expect(answer?.startsWith('the webhook host ')).toBe(true);
    // Never echoes credentials, path or query.
    expect(answer).not.toMatch(/user|pass|token|meta-data|:8080|:9000/i);
  });

  it.each(['http://localhost/', 'http://LOCALHOST:3000/x', 'http://localhost./', 'http://hooks.localhost/'])(
    'refuses the loopback name in %s',
    (url) => {
      expect(literalWebhookAddressBlocked(url, [])).toMatch(
        /^the webhook host \S*localhost is a loopback host name$/,
      );
    },
  );

  it.each([
    'https://hooks.example.com/moa',
    'https://internal.corp/moa', // a name: checked when the worker connects
    'http://8.8.8.8/',
    'http://[2606:4700:4700::1111]/',
    'http://[::ffff:8.8.8.8]/',
    'http://localhost.example.com/',
    'ftp://127.0.0.1/', // not http(s): the caller's own validation refuses it
    'not a url',
    '',
  ])('leaves %s alone', (url) => {
    expect(literalWebhookAddressBlocked(url, [])).toBeUndefined();
  });

  it('lets webhooks.allowHosts exempt a literal address, a CIDR or localhost', () => {
    expect(literalWebhookAddressBlocked('http://127.0.0.1:9/', ['127.0.0.1'])).toBeUndefined();
    expect(literalWebhookAddressBlocked('http://2130706433:9/', ['127.0.0.1'])).toBeUndefined();
    expect(literalWebhookAddressBlocked('http://127.0.0.2:9/', ['127.0.0.1'])).toContain('127.0.0.2');
    expect(literalWebhookAddressBlocked('http://10.20.1.2/', ['10.20.0.0/16'])).toBeUndefined();
    expect(literalWebhookAddressBlocked('http://[::ffff:10.20.1.2]/', ['10.20.0.0/16'])).toBeUndefined();
    expect(literalWebhookAddressBlocked('http://10.21.1.2/', ['10.20.0.0/16'])).toBeDefined();
    expect(literalWebhookAddressBlocked('http://[::1]/', ['::1'])).toBeUndefined();
    expect(literalWebhookAddressBlocked('http://localhost/', ['localhost'])).toBeUndefined();
    expect(literalWebhookAddressBlocked('http://localhost/', ['127.0.0.1'])).toBeUndefined();
    expect(literalWebhookAddressBlocked('http://localhost/', ['::1'])).toBeUndefined();
    expect(literalWebhookAddressBlocked('http://localhost/', ['10.0.0.0/8'])).toBeDefined();
    // A compiled list works the same.
    const compiled = compileAllowList(['127.0.0.1']);
    expect(literalWebhookAddressBlocked('http://0x7f.1/', compiled)).toBeUndefined();
    expect(literalWebhookAddressBlocked('http://10.0.0.1/', compiled)).toBeDefined();
  });
});
