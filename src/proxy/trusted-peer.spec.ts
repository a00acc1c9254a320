import { trustedPeerMatcher } from './trusted-peer.js';

describe('trustedPeerMatcher', () => {
  it('trusts nobody when TRUST_PROXY is empty', () => {
    expect(trustedPeerMatcher([])('127.0.0.1')).toBe(false);
  });

  it('matches addresses, CIDRs and IPv4-mapped IPv6 peers', () => {
    const trusted = trustedPeerMatcher(['10.0.0.0/8', '192.0.2.1', 'fd00::/8']);
    expect(trusted('10.1.2.3')).toBe(true);
    expect(trusted('::ffff:10.1.2.3')).toBe(true);
    expect(trusted('192.0.2.1')).toBe(true);
    expect(trusted('192.0.2.2')).toBe(false);
    expect(trusted('fd12::1')).toBe(true);
    expect(trusted('2001:db8::1')).toBe(false);
    expect(trusted(undefined)).toBe(false);
  });

  it('knows the names Fastify accepts', () => {
    const trusted = trustedPeerMatcher(['loopback']);
    expect(trusted('127.0.0.1')).toBe(true);
    expect(trusted('::1')).toBe(true);
    expect(trusted('10.0.0.1')).toBe(false);
  });
});
