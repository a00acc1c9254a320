import { BlockList, isIP } from 'node:net';

/**
 * The key a client is counted under: an IPv4 address, or the /64 of an IPv6 address (one subscriber
 * usually holds a whole /64, so counting single addresses would give them 2^64 budgets).
 */
export function clientKey(address: string): string {
  const bare = address.replace(/%.*$/, '').toLowerCase();
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/.exec(bare);
  if (mapped?.[1] !== undefined) return mapped[1];
  if (!bare.includes(':')) return bare;
  const [head = '', tail] = bare.split('::', 2);
  const headGroups = head === '' ? [] : head.split(':');
  let groups = headGroups;
  if (tail !== undefined) {
    const tailGroups = tail === '' ? [] : tail.split(':');
    // an embedded dotted IPv4 address takes the room of two groups
    const tailWidth = tailGroups.reduce((width, group) => width + (group.includes('.') ? 2 : 1), 0);
    groups = [...headGroups, ...Array.from({ length: Math.max(0, 8 - headGroups.length - tailWidth) }, () => '0'), ...tailGroups];
  }
  return `${groups
    .slice(0, 4)
    .map((group) => Number.parseInt(group, 16).toString(16))
    .join(':')}::/64`;
}

/** proxy-addr's named ranges, which Fastify's `trustProxy` (and so TRUST_PROXY) accepts besides addresses and CIDRs. */
const NAMED_RANGES: Readonly<Record<string, readonly string[]>> = {
  loopback: ['127.0.0.1/8', '::1/128'],
  linklocal: ['169.254.0.0/16', 'fe80::/10'],
  uniquelocal: ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', 'fc00::/7'],
};

/**
 * A matcher for TRUST_PROXY's list (addresses, CIDRs, proxy-addr's names): true for a peer the
 * gateway trusts as a proxy. An IPv4-mapped IPv6 peer (`::ffff:10.0.0.1`) matches its IPv4 entry.
 */
export function trustedPeers(entries: readonly string[]): (address: string | undefined) => boolean {
  const list = new BlockList();
  for (const entry of entries.flatMap((e) => NAMED_RANGES[e] ?? [e])) {
    const [address = '', bits] = entry.split('/', 2);
    const family = isIP(address);
    if (family === 0) continue;
    const type = family === 4 ? 'ipv4' : 'ipv6';
    if (bits === undefined) list.addAddress(address, type);
    else list.addSubnet(address, Number(bits), type);
  }
  if (entries.length === 0) return () => false;
  return (address) => {
    if (address === undefined) return false;
    const bare = address.replace(/%.*$/, '');
    const family = isIP(bare);
    return family !== 0 && list.check(bare, family === 4 ? 'ipv4' : 'ipv6');
  };
}
