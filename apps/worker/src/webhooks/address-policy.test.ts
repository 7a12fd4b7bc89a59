import { describe, expect, it } from 'vitest';
import { compileAllowList, isBlockedAddress } from './address-policy.js';

describe('webhook address policy', () => {
  it.each([
    '10.0.0.1',
    '10.255.255.255',
    '172.16.0.1',
    '172.31.255.254',
    '192.168.1.1',
    '127.0.0.1',
    '127.8.9.10',
    '169.254.169.254',
    '100.64.0.1',
    '0.0.0.0',
    '224.0.0.1',
    '::1',
    '::',
    'fc00::1',
    'fd12:3456::1',
    'fe80::1',
    '::ffff:10.0.0.1',
    '::ffff:127.0.0.1',
    'not-an-ip',
  ])('blocks %s', (address) => {
    expect(isBlockedAddress(address)).toBe(true);
  });

  it.each(['8.8.8.8', '1.1.1.1', '172.15.0.1', '172.32.0.1', '192.169.0.1', '2606:4700:4700::1111'])(
    'allows the public address %s',
    (address) => {
      expect(isBlockedAddress(address)).toBe(false);
    },
  );

  it('exempts allow-listed host names, addresses and CIDRs only', () => {
    const allowList = compileAllowList(['hooks.internal', '127.0.0.1', '10.20.0.0/16', 'fd00::/8']);
    expect(allowList.allows('hooks.internal', '10.0.0.1')).toBe(true);
    expect(allowList.allows('HOOKS.INTERNAL', '10.0.0.1')).toBe(true);
    expect(allowList.allows('other', '127.0.0.1')).toBe(true);
    expect(allowList.allows('other', '127.0.0.2')).toBe(false);
    expect(allowList.allows('other', '10.20.3.4')).toBe(true);
    expect(allowList.allows('other', '10.21.3.4')).toBe(false);
    expect(allowList.allows('other', '::ffff:10.20.3.4')).toBe(true);
    expect(allowList.allows('other', 'fd12::1')).toBe(true);
    expect(allowList.allows('other', 'fe80::1')).toBe(false);
  });
});
