// Visitors, not only visits (issue 13). A visitor is known for one UTC day
// only, by a keyed hash of the client's address key (IPv6 by its prefix, as
// for the rate limits: core/address.ts), the first 512 bytes of its user
// agent and the key's site, under a random salt made for that day. Hashes
// and salts are deleted by the roll-up once the day is over; only the day's
// counts (visits, visitors, bots) remain. Bots (a crawler's user agent, no
// user agent, or a page that reports navigator.webdriver) are counted as
// bots per key per day and nothing else.

/** Who a new visit is: a person (for the day's hash) or a bot. */
export type Who = { bot: true } | { bot: false; address: string; ua: string };

/** Bytes of user agent that go into the hash; the rest of a long one changes nothing. */
export const UA_HASH_BYTES = 512;

/** The key under which server-wide numbers are kept (no key may be empty: core/keys.ts). */
export const SERVER_KEY = "";

/** A batch's visitors for its day, handed to the store with the visits it commits. */
export interface DayBatch {
  /** UTC day, YYYY-MM-DD. */
  day: string;
  /** Per key, the visitor hashes of the batch's people (duplicates allowed: the store keeps one). */
  hashes: ReadonlyMap<string, readonly string[]>;
  /** Server-wide hashes (no site), kept under SERVER_KEY. */
  server: readonly string[];
  /** Per key, bots in this batch. */
  bots: ReadonlyMap<string, number>;
}

/** A key's numbers for one day. */
export interface DayCounts {
  visits: number;
  visitors: number;
  bots: number;
}

export interface DailyPoint extends DayCounts {
  day: string;
}

/** The UTC day of an instant, YYYY-MM-DD. */
export function utcDay(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

/** The UTC day `n` days before `day`. */
export function daysBefore(day: string, n: number): string {
  return utcDay(Date.parse(`${day}T00:00:00Z`) - n * 86_400_000);
}

/**
 * The site a key belongs to, for the visitor hash: the key up to its first
 * "/" ("example.com/blog" → "example.com"), or the whole key when it has
 * none ("signup"). Every path key ("/", "/blog/x") is this server's own site
 * "", so one person reading several pages is one visitor on each of them
 * and the same hash is not reusable across sites.
 */
export function siteOf(key: string): string {
  const slash = key.indexOf("/");
  return slash < 0 ? key : key.slice(0, slash);
}

/** The first `max` bytes of a string as UTF-8, cut on a code point boundary. */
export function utf8Prefix(s: string, max: number): string {
  if (s.length * 3 <= max) return s;
  let bytes = 0;
  let i = 0;
  for (; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const size = c < 0x80 ? 1 : c < 0x800 ? 2 : c >= 0xd800 && c <= 0xdbff ? 4 : 3;
    if (bytes + size > max) break;
    bytes += size;
    if (size === 4) i++;
  }
  return s.slice(0, i);
}

/** Keyed MAC for visitor ids: HMAC-SHA-256 truncated to 64 bits, hex (16 characters). */
export type VisitorMac = (salt: string, message: string) => string;

/** The day's salt: created on first use for the day, shared by every instance and object. */
export type SaltSource = (day: string) => Promise<string>;

/**
 * Turns a batch's people into the day's hashes. The salt of the current day
 * is cached, so a commit pays one MAC per person and site, not a query.
 */
export class VisitorIds {
  readonly #mac: VisitorMac;
  readonly #source: SaltSource;
  #cached: { day: string; salt: Promise<string> } | null = null;

  constructor(mac: VisitorMac, source: SaltSource) {
    this.#mac = mac;
    this.#source = source;
  }

  salt(day: string): Promise<string> {
    if (this.#cached?.day !== day) {
      const salt = this.#source(day);
      const entry = { day, salt };
      this.#cached = entry;
      // A failed fetch is asked again by the next commit.
      salt.catch(() => {
        if (this.#cached === entry) this.#cached = null;
      });
    }
    return this.#cached!.salt;
  }

  /** The day's hashes for `people` (key and who), bots counted apart. */
  async batch(day: string, people: Iterable<[string, Who]>): Promise<DayBatch> {
    const hashes = new Map<string, string[]>();
    const bots = new Map<string, number>();
    const server: string[] = [];
    let salt: string | null = null;
    for (const [key, who] of people) {
      if (who.bot) {
        bots.set(key, (bots.get(key) ?? 0) + 1);
        continue;
      }
      salt ??= await this.salt(day);
      // Separators that cannot occur inside an address key; the UA comes last, so it cannot shift the others.
      const person = `${who.address}\u0000${utf8Prefix(who.ua, UA_HASH_BYTES)}`;
      const list = hashes.get(key);
      const hash = this.#mac(salt, `s\u0000${siteOf(key)}\u0000${person}`);
      if (list) list.push(hash);
      else hashes.set(key, [hash]);
      server.push(this.#mac(salt, `a\u0000${person}`));
    }
    return { day, hashes, server, bots };
  }
}
