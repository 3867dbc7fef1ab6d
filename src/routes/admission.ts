import { HeadcountError } from "../core/errors.ts";
import { KeyLimitError, type KeyLimit } from "../core/key-limit.ts";
import { validateKey } from "../core/keys.ts";
import type { RateLimiter } from "../core/rate-limiter.ts";
import type { SocketCaps } from "../core/socket-caps.ts";
import { clientAddress, type AddressRules } from "../core/address.ts";
import { originAllowed, type RefusedOrigins } from "../core/origins.ts";
import { isbot } from "isbot";
import { UA_HASH_BYTES, utf8Prefix, type Who } from "../core/visitors.ts";
import { hasBearerToken } from "./auth.ts";
import { handshakeProblem } from "./handshake.ts";
import { strictQuery } from "./params.ts";
import { lastEventToken, pixelKeyFromReferer, referer, streamProblem } from "./transports.ts";

// The one decision a visit gets (DESIGN.md §1), whatever carries it: refuse
// it with a status, or accept it as a Visit that the runtime upgrades and
// binds to the engine (a WebSocket), that the app streams to (an event
// stream, routes/sse.ts) or counts once (the pixel, routes/pixel.ts). Plain
// code over a minimal request rather than a Hono route: it runs once per
// visitor, so a burst of 10,000 pays for nothing it does not use, and every
// runtime calls it the same way.

/** What the decision reads of a handshake: Node passes node:http's parsed request, the others a Request. */
export interface UpgradeRequest {
  readonly method: string;
  /** The request target: a full URL or a path with its query. */
  readonly url: string;
  header(name: string): string | null | undefined;
}

/** A visit the server has agreed to: what the engine needs to count it. */
export interface Visit {
  key: string;
  resume: string | null;
  /** The client address the limits apply to (never stored). */
  address: string;
  /** A person (address and user agent, for the day's visitor hash only) or a bot (core/visitors.ts). */
  who: Who;
}

/**
 * Whether a visit is a bot's: a user agent the isbot list recognises, no user
 * agent at all, or a page that says it is automated (`wd=1`: the page and the
 * widget send it when navigator.webdriver is true).
 */
export function isBotVisit(userAgent: string | null | undefined, webdriver: boolean): boolean {
  return webdriver || !userAgent || isbot(userAgent);
}

/** Who a visit is; only the first 512 bytes of a user agent are kept, and only for the hash. */
export function whoOf(req: UpgradeRequest, url: string, address: string): Who {
  const ua = req.header("user-agent");
  if (isBotVisit(ua, strictQuery(url, "wd") === "1")) return { bot: true };
  return { bot: false, address, ua: utf8Prefix(ua!, UA_HASH_BYTES) };
}

/**
 * What carries a visit. `websocket`: /ws. `stream`: /sse, the same visit as
 * an event stream where upgrades are blocked. `pixel`: /pixel.gif, one visit
 * without a connection (no socket cap, no resume, key from the Referer when
 * absent).
 */
export type VisitTransport = "websocket" | "stream" | "pixel";

export type Admission = { visit: Visit; refused?: undefined } | { refused: Response; visit?: undefined };

/** An admission that may wait for one lookup (a new key at MAX_KEYS); otherwise decided at once. */
export type PendingAdmission = Admission | Promise<Admission>;

export interface AdmissionRules extends AddressRules {
  limiter: RateLimiter;
  /** Socket caps; absent where the platform owns them (Workers: the key's object checks its own). */
  caps?: SocketCaps;
  /** ALLOWED_ORIGINS: "*", or origins and "self" (core/origins.ts). */
  allowedOrigins: "*" | readonly string[];
  /** Remembers refused origins for the dashboard (createApp supplies one when absent). */
  refusedOrigins?: RefusedOrigins;
  /** Requests bearing the admin token are not rate limited. */
  adminToken?: string;
  now(): number;
}

/** The socket path; everything else is plain HTTP. */
export const VISIT_PATH = "/ws";

/** Whether a request asks for a visit's WebSocket (runtimes route these to `admit`, the rest to the app). */
export function isVisitUpgrade(url: string, upgradeHeader: string | null | undefined): boolean {
  if (upgradeHeader?.toLowerCase() !== "websocket") return false;
  const start = url.startsWith("/") ? 0 : url.indexOf("/", url.indexOf("//") + 2);
  const end = url.indexOf("?", start);
  return url.slice(start, end < 0 ? undefined : end) === VISIT_PATH;
}

function refuse(status: number, error: string, message: string, headers: Record<string, string> = {}): Admission {
  return { refused: Response.json({ error, message }, { status, headers }) };
}

/**
 * Decides a visit's request. In order: rate limit, origin, socket caps (not
 * for the pixel), key, and the transport's own checks (RFC 6455 handshake;
 * the stream's method and Accept). A refusal counts nothing and says
 * `Connection: close` where the client should not keep a descriptor.
 */
export function admit(req: UpgradeRequest, peerAddress: string | undefined, rules: AdmissionRules, transport: VisitTransport = "websocket"): Admission {
  const forwarded = rules.trustProxyHeader ? req.header(rules.trustProxyHeader) : undefined;
  const address = clientAddress(forwarded, peerAddress, rules);
  if (!(rules.adminToken && hasBearerToken(req.header("authorization"), rules.adminToken))) {
    const took = rules.limiter.take(address, rules.now());
    if (!took.ok) {
      return refuse(429, "rate_limited", `too many requests; retry in ${took.retryAfterS} s`, {
        "Retry-After": String(took.retryAfterS),
        Connection: "close",
      });
    }
  }
  // Browsers always send Origin on a WebSocket and a cross-origin EventSource; a client without one is not a
  // browser page and could forge any header anyway. An <img> sends no Origin: the pixel goes by its Referer's.
  const origin = transport === "pixel" ? referer(req)?.origin : req.header("origin");
  if (origin && !originAllowed(origin, req.header("host"), rules.allowedOrigins)) {
    rules.refusedOrigins?.record(origin, rules.now());
    return refuse(403, "origin_not_allowed", `origin ${origin} may not open this counter; the server's ALLOWED_ORIGINS must list it`);
  }
  const full = transport === "pixel" ? null : rules.caps?.check(address);
  if (full) {
    rules.caps!.refusals++;
    const message = full === "global" ? "server is at its socket limit" : "too many sockets from your address";
    return refuse(503, "too_many_sockets", message, { "Retry-After": "5", Connection: "close" });
  }
  let key: string;
  let resume: string | null;
  let who: Who;
  try {
    const named = strictQuery(req.url, "key");
    key = validateKey(transport === "pixel" && named === undefined ? pixelKeyFromReferer(req) : named);
    resume = transport === "pixel" ? null : (strictQuery(req.url, "resume") ?? (transport === "stream" ? lastEventToken(req) : null));
    who = whoOf(req, req.url, address);
  } catch (err) {
    if (err instanceof HeadcountError) return refuse(err.status, err.code, err.message);
    throw err;
  }
  if (transport === "websocket") {
    const problem = handshakeProblem(req);
    if (problem) return refuse(problem.status, "bad_handshake", problem.message, problem.headers);
  } else if (transport === "stream") {
    const problem = streamProblem(req);
    if (problem) return refuse(problem.status, "bad_request", problem.message, problem.headers);
  }
  return { visit: { key, resume, address, who } };
}

/**
 * MAX_KEYS, after the rest of admission: while the store has room (nearly
 * always) the decision stands as it is, synchronously; at the cap, a key the
 * store does not hold is refused with 403 `key_limit` before any upgrade or
 * stream starts. The commit checks again (core/key-limit.ts), so a visit that
 * slips past here (a race, a forged resume token) is refused with close 1008.
 */
export function admitKey(decision: Admission, keys: Pick<KeyLimit, "allows" | "max"> | undefined): PendingAdmission {
  if (!keys || decision.refused) return decision;
  const allowed = keys.allows(decision.visit.key);
  const decide = (yes: boolean): Admission => {
    if (yes) return decision;
    const err = new KeyLimitError(keys.max);
    return refuse(err.status, err.code, err.message, { Connection: "close" });
  };
  return typeof allowed === "boolean" ? decide(allowed) : allowed.then(decide);
}
