/**
 * SSRF guard for webhook targets: addresses that do not lead to a public host on the internet
 * are refused. Checked when a webhook is configured (the URL and what its name resolves to)
 * and again at connect time through publicLookup, so a name that later resolves elsewhere
 * (DNS rebinding) is still caught: the socket connects only to an address this module approved.
 *
 * Addresses are judged as numbers, not as text, so every spelling of one address gets one
 * answer: the URL parser already turns 2130706433, 0x7f.1, 0177.0.0.1 and 127.1 into
 * 127.0.0.1, and an IPv6 address is read into its 16 bytes whatever its form (compressed or
 * not, with a dotted tail, with a zone).
 *
 * IPv6 forms that carry an IPv4 address: the mapped (::ffff:0:0/96) and translated
 * (::ffff:0:0:0/96) forms are judged by the IPv4 address they carry. Every other such form is
 * refused whole: IPv4-compatible ::/96 (deprecated, and `[::127.0.0.1]` must not reach
 * loopback), 6to4 2002::/16 and Teredo 2001::/32 (tunnels, deprecated; decoding them would only
 * help find the one embedding that slips through, and no receiver needs them), and NAT64, both
 * the well-known 64:ff9b::/96 and the local-use 64:ff9b:1::/48 (a gateway behind NAT64 that
 * must reach IPv4 receivers can allow private targets).
 */
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { isIP } from 'node:net';

type Rule = readonly [network: string, prefix: number, what: string];

const IPV4_RULES: readonly Rule[] = [
  ['0.0.0.0', 8, '"this network", 0.0.0.0 included'],
  ['10.0.0.0', 8, 'private'],
  ['100.64.0.0', 10, 'carrier-grade NAT'],
  ['127.0.0.0', 8, 'loopback'],
  ['169.254.0.0', 16, 'link-local, the 169.254.169.254 metadata address included'],
  ['172.16.0.0', 12, 'private'],
  ['192.0.0.0', 24, 'IETF protocol assignments'],
  ['192.88.99.0', 24, '6to4 relay anycast (deprecated)'],
  ['192.168.0.0', 16, 'private'],
  ['198.18.0.0', 15, 'benchmarking'],
  ['224.0.0.0', 4, 'multicast'],
  ['240.0.0.0', 4, 'reserved, broadcast included'],
];

const IPV6_RULES: readonly Rule[] = [
  ['::', 96, 'unspecified, loopback or IPv4-compatible (deprecated)'],
  ['64:ff9b::', 96, 'NAT64'],
  ['64:ff9b:1::', 48, 'local-use NAT64'],
  ['100::', 64, 'discard-only'],
  ['2001::', 32, 'Teredo'],
  ['2001:2::', 48, 'benchmarking'],
  ['2002::', 16, '6to4'],
  ['fc00::', 7, 'unique-local, the fd00:ec2::254 metadata address included'],
  ['fe80::', 10, 'link-local'],
  ['fec0::', 10, 'site-local (deprecated)'],
  ['ff00::', 8, 'multicast'],
];

/** IPv6 prefixes whose last 32 bits are an IPv4 address to judge instead. */
const CARRIES_IPV4: readonly Rule[] = [
  ['::ffff:0:0', 96, 'IPv4-mapped'],
  ['::ffff:0:0:0', 96, 'IPv4-translated'],
];

function ipv4Bytes(text: string): Uint8Array {
  return Uint8Array.from(text.split('.').map(Number));
}

/** The 16 bytes of an address isIP() calls IPv6, in any of its spellings. */
function ipv6Bytes(text: string): Uint8Array {
  const address = text.replace(/%.*$/, ''); // a zone says which interface, not where
  const words: number[] = [];
  const parse = (part: string): number[] => {
    if (part === '') return [];
    const out: number[] = [];
    for (const group of part.split(':')) {
      if (group.includes('.')) {
        const [a, b, c, d] = ipv4Bytes(group) as unknown as [number, number, number, number];
        out.push((a << 8) | b, (c << 8) | d);
      } else out.push(Number.parseInt(group, 16));
    }
    return out;
  };
  const gap = address.indexOf('::');
  if (gap === -1) words.push(...parse(address));
  else {
    const head = parse(address.slice(0, gap));
    const tail = parse(address.slice(gap + 2));
    words.push(...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail);
  }
  const bytes = new Uint8Array(16);
  words.forEach((w, i) => {
    bytes[2 * i] = w >> 8;
    bytes[2 * i + 1] = w & 255;
  });
  return bytes;
}

function inPrefix(bytes: Uint8Array, network: Uint8Array, prefix: number): boolean {
  for (let bit = 0; bit < prefix; bit += 8) {
    const i = bit / 8;
    const mask = prefix - bit >= 8 ? 255 : (0xff << (8 - (prefix - bit))) & 255;
    if ((bytes[i]! & mask) !== (network[i]! & mask)) return false;
  }
  return true;
}

const compile = (rules: readonly Rule[], family: 4 | 6) =>
  rules.map(([network, prefix, what]) => ({ network: family === 4 ? ipv4Bytes(network) : ipv6Bytes(network), prefix, what }));
const V4 = compile(IPV4_RULES, 4);
const V6 = compile(IPV6_RULES, 6);
const V6_CARRYING_V4 = compile(CARRIES_IPV4, 6);

/** Why an address may not be a webhook target (e.g. "loopback"), or null when it may. */
export function addressProblem(address: string): string | null {
  const family = isIP(address);
  if (family === 4) {
    const bytes = ipv4Bytes(address);
    return V4.find((r) => inPrefix(bytes, r.network, r.prefix))?.what ?? null;
  }
  if (family === 6) {
    const bytes = ipv6Bytes(address);
    const carrier = V6_CARRYING_V4.find((r) => inPrefix(bytes, r.network, r.prefix));
    if (carrier) {
      const v4 = addressProblem(Array.from(bytes.subarray(12)).join('.'));
      return v4 === null ? null : `${carrier.what} ${v4}`;
    }
    return V6.find((r) => inPrefix(bytes, r.network, r.prefix))?.what ?? null;
  }
  return 'not an IP address';
}

export function isPrivateAddress(address: string): boolean {
  return addressProblem(address) !== null;
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

/** How long a configuration-time lookup may take; a slower name is checked at connect time only. */
const CHECK_LOOKUP_MS = 5_000;

/** Checks a target at configuration time: the name and every address it resolves to. */
export async function checkTarget(url: URL, resolve: Resolver = systemResolver, lookupMs = CHECK_LOOKUP_MS): Promise<void> {
  const host = hostOf(url);
  if (isLocalName(host)) throw new TargetNotAllowed(`${host} is a local name`);
  if (isIP(host)) {
    const problem = addressProblem(host);
    if (problem) throw new TargetNotAllowed(`${host} is not a public address (${problem})`);
    return;
  }
  // An unresolvable (or slow) name is not refused here: it is checked again at connect time.
  let timer: NodeJS.Timeout | undefined;
  const addresses = await Promise.race([
    resolve(host).catch(() => [] as LookupAddress[]),
    new Promise<LookupAddress[]>((done) => (timer = setTimeout(() => done([]), lookupMs))),
  ]).finally(() => clearTimeout(timer));
  for (const a of addresses) {
    const problem = addressProblem(a.address);
    if (problem) throw new TargetNotAllowed(`${host} resolves to ${a.address}, not a public address (${problem})`);
  }
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
        for (const a of addresses) {
          const problem = addressProblem(a.address);
          if (problem) return callback(new TargetNotAllowed(`${hostname} resolved to ${a.address}, not a public address (${problem})`), '', 0);
        }
        if (addresses.length === 0) return callback(Object.assign(new Error(`${hostname} has no address`), { code: 'ENOTFOUND' }), '', 0);
        if (options.all) return callback(null, addresses);
        const first = addresses[0]!;
        callback(null, first.address, first.family);
      },
      (err: NodeJS.ErrnoException) => callback(err, '', 0),
    );
  };
}
