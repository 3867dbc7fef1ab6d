import type { Context, Hono } from "hono";
import type { RateLimiter } from "../core/rate-limiter.ts";
import type { SocketGate } from "../core/socket-gate.ts";
import { hasBearer } from "./auth.ts";

// Abuse protections at the edge (DESIGN.md §7): token buckets per client
// address on upgrades and the API, the origin allowlist and the socket caps
// for upgrades. All answers are plain statuses with a JSON body.

export interface Protection {
  limiter: RateLimiter;
  /** Socket caps; absent where the platform owns them (Workers). */
  gate?: SocketGate;
  allowedOrigins: "*" | readonly string[];
  /** Lower-case header a trusted proxy sets to the client address. */
  trustProxyHeader?: string;
  /** Requests bearing the admin token are never rate limited (the dashboard polls). */
  adminToken?: string;
  now(): number;
  /** The transport's peer address, from the runtime. */
  peerAddress(c: Context): string | undefined;
}

/**
 * The client address: the trusted proxy header's rightmost entry (the one our
 * proxy appended; entries to its left are whatever the client claimed), or
 * the socket's peer address.
 */
export function clientAddress(c: Context, p: Protection): string {
  // Asked up to three times per upgrade (limit, cap, connect): work it out once.
  const known = resolved.get(c.req.raw);
  if (known !== undefined) return known;
  let address: string | undefined;
  if (p.trustProxyHeader) address = c.req.header(p.trustProxyHeader)?.split(",").pop()?.trim() || undefined;
  address ??= p.peerAddress(c) ?? "unknown";
  resolved.set(c.req.raw, address);
  return address;
}

const resolved = new WeakMap<Request, string>();

const LIMITED = ["/ws", "/api/*", "/badge/*", "/admin/*"];

// Refusals say `Connection: close`: a refused client (often at the socket cap,
// where descriptors are short) must not keep a keep-alive connection, and so
// a descriptor, after its answer. Node's upgrade path closes anyway; Bun and
// Deno keep the connection unless told.

export function mountProtection(app: Hono, p: Protection): void {
  for (const path of LIMITED) {
    app.use(path, async (c, next) => {
      if (p.adminToken && hasBearer(c, p.adminToken)) return next();
      const took = p.limiter.take(clientAddress(c, p), p.now());
      if (!took.ok) {
        c.header("Retry-After", String(took.retryAfterS));
        c.header("Connection", "close");
        return c.json({ error: "rate_limited", message: `too many requests; retry in ${took.retryAfterS} s` }, 429);
      }
      return next();
    });
  }

  app.use("/ws", async (c, next) => {
    const origin = c.req.header("origin");
    // Browsers always send Origin on a WebSocket; a client without one is not a
    // browser page and could forge any header anyway.
    if (origin && p.allowedOrigins !== "*" && !p.allowedOrigins.includes(origin)) {
      return c.json({ error: "origin_not_allowed", message: `origin ${origin} may not open this counter` }, 403);
    }
    if (p.gate && c.req.header("upgrade")?.toLowerCase() === "websocket") {
      const refusal = p.gate.check(clientAddress(c, p));
      if (refusal) {
        p.gate.refusals++;
        c.header("Retry-After", "5");
        c.header("Connection", "close");
        const message = refusal === "global" ? "server is at its socket limit" : "too many sockets from your address";
        return c.json({ error: "too_many_sockets", message }, 503);
      }
    }
    return next();
  });
}
