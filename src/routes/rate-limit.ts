import type { Context, Hono } from "hono";
import { clientAddress } from "../core/address.ts";
import type { AdmissionRules } from "./admission.ts";
import { hasBearerToken } from "./auth.ts";

// The per-address token bucket on the HTTP API (the socket's handshake takes
// its token in admission.ts): the API, badges and admin. Requests with the
// admin token are not limited (the dashboard polls).

const LIMITED = ["/ws", "/api/*", "/badge/*", "/admin/*"];

/** The limits' key for an HTTP request, worked out once per request. */
export function requestAddress(c: Context, rules: AdmissionRules, peerAddress: (c: Context) => string | undefined): string {
  const known = resolved.get(c.req.raw);
  if (known !== undefined) return known;
  const forwarded = rules.trustProxyHeader ? c.req.header(rules.trustProxyHeader) : undefined;
  const address = clientAddress(forwarded, peerAddress(c), rules);
  resolved.set(c.req.raw, address);
  return address;
}

const resolved = new WeakMap<Request, string>();

// A refusal says `Connection: close`: a refused client must not keep a
// keep-alive connection, and so a descriptor, after its answer (Bun and Deno
// keep the connection unless told).
export function mountRateLimit(app: Hono, rules: AdmissionRules, peerAddress: (c: Context) => string | undefined): void {
  for (const path of LIMITED) {
    app.use(path, async (c, next) => {
      if (rules.adminToken && hasBearerToken(c.req.header("authorization"), rules.adminToken)) return next();
      const took = rules.limiter.take(requestAddress(c, rules, peerAddress), rules.now());
      if (!took.ok) {
        c.header("Retry-After", String(took.retryAfterS));
        c.header("Connection", "close");
        return c.json({ error: "rate_limited", message: `too many requests; retry in ${took.retryAfterS} s` }, 429);
      }
      return next();
    });
  }
}
