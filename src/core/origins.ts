import { SELF_ORIGIN } from "./schemas.ts";

// Which pages may open a visit's WebSocket (ALLOWED_ORIGINS), and a short
// memory of the ones that were turned away so the dashboard can say what to
// allow. A browser always sends Origin on a WebSocket; a client without one
// is not a browser page (and could forge any header anyway), so it is let
// through: the allowlist stops other sites from counting their visitors on
// this server, not scripts.

export interface RefusedOrigin {
  origin: string;
  /** Refusals since this process (isolate, on Workers) started, or since the origin was last dropped from the table. */
  count: number;
  /** Epoch ms of the latest refusal. */
  lastAt: number;
}

/** Origins longer than this are cut: the header is the client's to choose. */
const MAX_ORIGIN_CHARS = 200;

/** host[:port] of an origin (`https://a.example:8443` -> `a.example:8443`), lower case, without a default port. */
function authority(originOrHost: string): string {
  const start = originOrHost.indexOf("://");
  const rest = (start < 0 ? originOrHost : originOrHost.slice(start + 3)).toLowerCase();
  return rest.endsWith(":80") ? rest.slice(0, -3) : rest.endsWith(":443") ? rest.slice(0, -4) : rest;
}

/**
 * Whether a page of `origin` may open the socket. `self` matches an origin
 * whose host[:port] is the request's Host, over http or https (a TLS proxy in
 * front changes the scheme, not the name).
 */
export function originAllowed(origin: string, host: string | null | undefined, allowed: "*" | readonly string[]): boolean {
  if (allowed === "*" || allowed.includes(origin)) return true;
  if (!host || !allowed.includes(SELF_ORIGIN)) return false;
  return /^https?:\/\//i.test(origin) && authority(origin) === authority(host);
}

/**
 * The origins refused lately, with counts: at most `capacity` distinct
 * origins, the least recently refused dropped first, so a stranger sending
 * made-up Origin headers can churn the table but never grow it. Origins only:
 * no addresses, nothing stored.
 */
export class RefusedOrigins {
  readonly #capacity: number;
  /** What the table covers: one server process, or one Workers isolate of many. */
  readonly scope: "process" | "isolate";
  /** Insertion order is recency: a refusal moves its origin to the end. */
  readonly #byOrigin = new Map<string, RefusedOrigin>();
  /** Every refusal, including those of origins since dropped. */
  total = 0;

  constructor(capacity = 50, scope: "process" | "isolate" = "process") {
    this.#capacity = capacity;
    this.scope = scope;
  }

  get size(): number {
    return this.#byOrigin.size;
  }

  record(origin: string, now: number): void {
    this.total++;
    const name = origin.length > MAX_ORIGIN_CHARS ? `${origin.slice(0, MAX_ORIGIN_CHARS)}…` : origin;
    const entry = this.#byOrigin.get(name);
    if (entry) this.#byOrigin.delete(name);
    this.#byOrigin.set(name, { origin: name, count: (entry?.count ?? 0) + 1, lastAt: now });
    if (this.#byOrigin.size > this.#capacity) this.#byOrigin.delete(this.#byOrigin.keys().next().value!);
  }

  /** Most refused first (then the latest). */
  list(): RefusedOrigin[] {
    return [...this.#byOrigin.values()].map((e) => ({ ...e })).sort((a, b) => b.count - a.count || b.lastAt - a.lastAt);
  }
}
