// Who a request comes from, for the per-address limits (rate limits, socket
// caps, connection caps) and, for one day, the visitor hash. The address is
// the transport's peer, or the entry a trusted proxy chain put in its header;
// IPv6 clients are taken by prefix (a /64 is one subscriber, who can use 2^64
// addresses), so every limit holds per network, not per address.

export interface AddressRules {
  /** Lower-case header a trusted proxy sets to the client address (x-forwarded-for); unset: the peer address. */
  trustProxyHeader?: string;
  /** How many trusted proxies append to that header: the client is the Nth entry from the right (default 1). */
  trustProxyHops?: number;
  /** IPv6 clients are aggregated by this many leading bits (default 64). */
  ipv6PrefixBits?: number;
}

/** The limits' key for a request whose peer address sent nothing parseable: one shared bucket. */
export const UNKNOWN_ADDRESS = "unknown";

const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

function ipv4(text: string): string | null {
  const m = IPV4.exec(text);
  if (!m) return null;
  const parts = m.slice(1).map(Number);
  return parts.every((n) => n <= 255) ? parts.join(".") : null;
}

/** The 8 groups of an IPv6 address, or null. A trailing dotted IPv4 part is folded into the last two groups. */
function ipv6Groups(text: string): number[] | null {
  let s = text.replace(/%.*$/, "");
  const v4 = /:(\d{1,3}(?:\.\d{1,3}){3})$/.exec(s);
  if (v4) {
    const four = ipv4(v4[1]!);
    if (!four) return null;
    const [a, b, c, d] = four.split(".").map(Number) as [number, number, number, number];
    s = `${s.slice(0, v4.index)}:${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const halves = s.split("::");
  if (halves.length > 2) return null;
  const parse = (part: string) => (part === "" ? [] : part.split(":"));
  const head = parse(halves[0]!);
  const tail = halves.length === 2 ? parse(halves[1]!) : [];
  const fill = 8 - head.length - tail.length;
  if ((halves.length === 1 && fill !== 0) || fill < 0) return null;
  const groups = [...head, ...Array<string>(halves.length === 2 ? fill : 0).fill("0"), ...tail];
  if (groups.length !== 8 || !groups.every((g) => /^[0-9a-f]{1,4}$/i.test(g))) return null;
  return groups.map((g) => parseInt(g, 16));
}

/**
 * The limits' key for one address: IPv4 as it is (an IPv4-mapped IPv6
 * address too), IPv6 as its prefix in canonical form ("2001:db8:0:1::/64"),
 * null when `text` is no IP address.
 */
export function addressKey(text: string, ipv6PrefixBits = 64): string | null {
  const raw = text.trim().replace(/^\[(.*)\](?::\d+)?$/, "$1");
  const four = ipv4(raw.replace(/:\d+$/, ""));
  if (four) return four;
  const groups = ipv6Groups(raw);
  if (!groups) return null;
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    return `${groups[6]! >> 8}.${groups[6]! & 255}.${groups[7]! >> 8}.${groups[7]! & 255}`;
  }
  const bits = Math.min(128, Math.max(0, ipv6PrefixBits));
  const kept = groups.map((g, i) => {
    const from = i * 16;
    if (from + 16 <= bits) return g;
    if (from >= bits) return 0;
    return g & (0xffff << (16 - (bits - from)));
  });
  return `${kept.map((g) => g.toString(16)).join(":").replace(/(^|:)0(:0)+(:|$)/, "::")}/${bits}`;
}

/**
 * The client's limits key: the entry `trustProxyHops` from the right of the
 * trusted header (each proxy appends the address it saw; entries further
 * left are whatever the client claimed), else the peer address. A chain
 * shorter than the hops, or an entry that is no address, falls back to the
 * peer (the proxy), so a malformed header can never pick a fresh bucket.
 */
export function clientAddress(headerValue: string | null | undefined, peer: string | undefined, rules: AddressRules): string {
  const bits = rules.ipv6PrefixBits ?? 64;
  if (rules.trustProxyHeader && headerValue) {
    const entries = headerValue.split(",");
    const entry = entries[entries.length - (rules.trustProxyHops ?? 1)];
    const key = entry === undefined ? null : addressKey(entry, bits);
    if (key) return key;
  }
  return (peer === undefined ? null : addressKey(peer, bits)) ?? UNKNOWN_ADDRESS;
}
