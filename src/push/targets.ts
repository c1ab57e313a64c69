/**
 * SSRF guard for webhook targets: loopback, private, link-local, unique-local, CGNAT,
 * multicast, unspecified, IPv4-mapped/-translated forms of those, and cloud metadata
 * addresses are refused. Checked when a webhook is configured (the URL and what its name
 * resolves to) and again at connect time through lookupPublic, so a name that later
 * resolves elsewhere (DNS rebinding) is still caught: the socket connects only to an address
 * this module approved.
 */
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { BlockList, isIP } from 'node:net';

const blocked = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8], // "this network", includes 0.0.0.0
  ['10.0.0.0', 8],
  ['100.64.0.0', 10], // carrier-grade NAT
  ['127.0.0.0', 8],
  ['169.254.0.0', 16], // link-local, includes 169.254.169.254 (metadata)
  ['172.16.0.0', 12],
  ['192.0.0.0', 24], // IETF protocol assignments
  ['192.168.0.0', 16],
  ['198.18.0.0', 15], // benchmarking
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved, includes broadcast
] as const) {
  blocked.addSubnet(net, prefix, 'ipv4');
}
for (const [net, prefix] of [
  ['::', 128], // unspecified
  ['::1', 128], // loopback
  ['fc00::', 7], // unique-local
  ['fe80::', 10], // link-local
  ['ff00::', 8], // multicast
  ['64:ff9b::', 96], // NAT64 embeds IPv4; checked via the embedded address below too
  ['fd00:ec2::254', 128], // AWS metadata over IPv6
] as const) {
  blocked.addSubnet(net, prefix, 'ipv6');
}

/** The IPv4 address embedded in an IPv4-mapped (::ffff:a.b.c.d) or NAT64 IPv6 address. */
function embeddedIPv4(address: string): string | null {
  const m = /^(?:::ffff:|64:ff9b::)(?:0:)?([0-9.]+|[0-9a-f]{1,4}:[0-9a-f]{1,4})$/i.exec(address);
  if (!m) return null;
  const tail = m[1]!;
  if (tail.includes('.')) return tail;
  const [hi, lo] = tail.split(':').map((h) => Number.parseInt(h, 16)) as [number, number];
  return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
}

export function isPrivateAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 4) return blocked.check(address, 'ipv4');
  if (family === 6) {
    const v4 = embeddedIPv4(address.toLowerCase());
    if (v4 !== null && blocked.check(v4, 'ipv4')) return true;
    return blocked.check(address, 'ipv6');
  }
  return true; // not an address at all: refuse
}

function isLocalName(host: string): boolean {
  const h = host.toLowerCase().replace(/\.$/, '');
  return h === 'localhost' || h.endsWith('.localhost') || h === 'metadata.google.internal';
}

export class TargetNotAllowed extends Error {
  override name = 'TargetNotAllowed';
  readonly code = 'ERR_TARGET_NOT_ALLOWED';
}

/** Host of a URL as a bare name or address (IPv6 without brackets). */
export function hostOf(url: URL): string {
  return url.hostname.replace(/^\[(.*)\]$/, '$1');
}

/** Resolves a name to all its addresses; injectable so tests can play a rebinding DNS. */
export type Resolver = (hostname: string) => Promise<LookupAddress[]>;

export const systemResolver: Resolver = (hostname) =>
  new Promise((resolve, reject) =>
    dnsLookup(hostname, { all: true }, (err, list) => (err ? reject(err) : resolve(list))),
  );

/** Checks a target at configuration time: the name and every address it resolves to. */
export async function checkTarget(url: URL, resolve: Resolver = systemResolver): Promise<void> {
  const host = hostOf(url);
  if (isLocalName(host)) throw new TargetNotAllowed(`${host} is a local name`);
  if (isIP(host)) {
    if (isPrivateAddress(host)) throw new TargetNotAllowed(`${host} is a loopback, private or link-local address`);
    return;
  }
  // An unresolvable name is not refused here: it is checked again at connect time.
  const addresses = await resolve(host).catch(() => [] as LookupAddress[]);
  const bad = addresses.find((a) => isPrivateAddress(a.address));
  if (bad) throw new TargetNotAllowed(`${host} resolves to ${bad.address}, a loopback, private or link-local address`);
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/**
 * A dns.lookup replacement for sockets: resolves, refuses private answers, and hands the
 * socket only approved addresses, so the check and the connection use the same address.
 */
export function publicLookup(resolve: Resolver = systemResolver) {
  return (hostname: string, options: { all?: boolean }, callback: LookupCallback): void => {
    if (isLocalName(hostname)) return callback(new TargetNotAllowed(`${hostname} is a local name`), '', 0);
    resolve(hostname).then(
      (addresses) => {
        const bad = addresses.find((a) => isPrivateAddress(a.address));
        if (bad) return callback(new TargetNotAllowed(`${hostname} resolved to ${bad.address}`), '', 0);
        if (addresses.length === 0) return callback(Object.assign(new Error(`${hostname} has no address`), { code: 'ENOTFOUND' }), '', 0);
        if (options.all) return callback(null, addresses);
        const first = addresses[0]!;
        callback(null, first.address, first.family);
      },
      (err: NodeJS.ErrnoException) => callback(err, '', 0),
    );
  };
}
