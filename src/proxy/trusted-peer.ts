import { BlockList, isIP } from 'node:net';

/** The names Fastify's trustProxy (proxy-addr) accepts besides addresses and CIDRs. */
const NAMED_RANGES: Readonly<Record<string, ReadonlyArray<readonly [string, number]>>> = {
  loopback: [['127.0.0.1', 8], ['::1', 128]],
  linklocal: [['169.254.0.0', 16], ['fe80::', 10]],
  uniquelocal: [['10.0.0.0', 8], ['172.16.0.0', 12], ['192.168.0.0', 16], ['fc00::', 7]],
};

/**
 * "Is this socket peer one of the proxies in TRUST_PROXY?", for headers that only a trusted hop
 * may set (X-Forwarded-For). Built once; BlockList matches IPv4-mapped IPv6 peers too.
 */
export function trustedPeerMatcher(entries: readonly string[]): (address: string | undefined) => boolean {
  if (entries.length === 0) return () => false;
  const list = new BlockList();
  for (const entry of entries) {
    const ranges = NAMED_RANGES[entry] ?? [parseRange(entry)];
    for (const [address, prefix] of ranges) {
      const family = isIP(address) === 6 ? 'ipv6' : 'ipv4';
      list.addSubnet(address, prefix, family);
    }
  }
  return (address) => {
    if (address === undefined) return false;
    const family = isIP(address);
    return family !== 0 && list.check(address, family === 6 ? 'ipv6' : 'ipv4');
  };
}

function parseRange(entry: string): readonly [string, number] {
  const [address = '', bits] = entry.split('/');
  const family = isIP(address);
  // an entry Fastify would refuse at start-up never matches here
  if (family === 0) return ['::', 128];
  const max = family === 6 ? 128 : 32;
  const prefix = bits === undefined ? max : Number(bits);
  return [address, Number.isInteger(prefix) && prefix >= 0 && prefix <= max ? prefix : max];
}
