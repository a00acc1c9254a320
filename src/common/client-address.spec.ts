import { clientKey, trustedPeers } from './client-address.js';

describe('clientKey', () => {
  it.each([
    ['203.0.113.7', '203.0.113.7'],
    ['::ffff:203.0.113.7', '203.0.113.7'],
    ['2001:db8:1:2:3:4:5:6', '2001:db8:1:2::/64'],
    ['2001:db8:1:2::9', '2001:db8:1:2::/64'],
    ['2001:DB8:0001:0002:ffff::1', '2001:db8:1:2::/64'],
    ['2001:db8::1', '2001:db8:0:0::/64'],
    ['::1', '0:0:0:0::/64'],
    ['fe80::1%eth0', 'fe80:0:0:0::/64'],
  ])('counts %s under %s', (address, key) => {
    expect(clientKey(address)).toBe(key);
  });
});

describe('trustedPeers', () => {
  const trusted = trustedPeers(['10.0.0.0/8', '192.0.2.7', '2001:db8::/32', 'loopback']);

  it.each(['10.1.2.3', '::ffff:10.1.2.3', '192.0.2.7', '2001:db8:1::5', '127.0.0.2', '::1'])('trusts %s', (address) => {
    expect(trusted(address)).toBe(true);
  });

  it.each(['11.0.0.1', '192.0.2.8', '2001:db9::1', 'not-an-address', undefined])('does not trust %s', (address) => {
    expect(trusted(address)).toBe(false);
  });

  it('trusts nobody for an empty list', () => {
    expect(trustedPeers([])('127.0.0.1')).toBe(false);
  });
});


describe('trustedPeers (as the proxy uses it for X-Forwarded-For)', () => {
  it('trusts nobody when TRUST_PROXY is empty', () => {
    expect(trustedPeers([])('127.0.0.1')).toBe(false);
  });

  it('matches addresses, CIDRs and IPv4-mapped IPv6 peers', () => {
    const trusted = trustedPeers(['10.0.0.0/8', '192.0.2.1', 'fd00::/8']);
    expect(trusted('10.1.2.3')).toBe(true);
    expect(trusted('::ffff:10.1.2.3')).toBe(true);
    expect(trusted('192.0.2.1')).toBe(true);
    expect(trusted('192.0.2.2')).toBe(false);
    expect(trusted('fd12::1')).toBe(true);
    expect(trusted('2001:db8::1')).toBe(false);
    expect(trusted(undefined)).toBe(false);
  });

  it('knows the names Fastify accepts', () => {
    const trusted = trustedPeers(['loopback']);
    expect(trusted('127.0.0.1')).toBe(true);
    expect(trusted('::1')).toBe(true);
    expect(trusted('10.0.0.1')).toBe(false);
  });
});
