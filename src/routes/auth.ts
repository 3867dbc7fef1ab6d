import type { Context, MiddlewareHandler } from "hono";
import { bearerAuth } from "hono/bearer-auth";
import { constantTimeEqual } from "../core/resume.ts";

// Who may read the dashboard's data, /metrics and the admin API. With
// ADMIN_TOKEN: `Authorization: Bearer <token>` (hono/bearer-auth, compared in
// constant time). Without one the quick start stays frictionless but nothing
// is exposed by accident: only a browser on this machine (a loopback peer,
// with no proxy's forwarding header, since a reverse proxy on the same
// machine would otherwise make everyone look local) may read it.

/** True when an Authorization header value is `Bearer <token>` for this token (compared in constant time). */
export function hasBearerToken(authorization: string | null | undefined, token: string): boolean {
  const m = /^Bearer +(\S+)$/i.exec(authorization ?? "");
  return m !== null && constantTimeEqual(m[1]!, token);
}

const FORWARDING_HEADERS = ["forwarded", "x-forwarded-for", "x-real-ip", "cf-connecting-ip", "true-client-ip"];

/** A loopback peer that no proxy speaks for. */
export function isLocalRequest(c: Context, peerAddress: string | undefined): boolean {
  if (peerAddress === undefined || !/^(127\.|::1$|::ffff:127\.)/.test(peerAddress)) return false;
  return FORWARDING_HEADERS.every((h) => c.req.header(h) === undefined);
}

export interface GuardOptions {
  adminToken: string | undefined;
  realm: string;
  /** Without a token, whether this request may still read (the loopback rule above). */
  local(c: Context): boolean;
}

export function adminGuard(opts: GuardOptions): MiddlewareHandler {
  if (opts.adminToken !== undefined) {
    const unauthorized = { error: "unauthorized", message: "this needs the admin token (Authorization: Bearer …)" };
    return bearerAuth({
      token: opts.adminToken,
      realm: opts.realm,
      noAuthenticationHeader: { message: unauthorized },
      invalidAuthenticationHeader: { message: unauthorized },
      invalidToken: { message: unauthorized },
    });
  }
  return async (c, next) => {
    if (opts.local(c)) return next();
    return c.json(
      {
        error: "admin_token_required",
        message: "without ADMIN_TOKEN this is readable from this machine only; set ADMIN_TOKEN to read it from elsewhere",
      },
      403,
    );
  };
}
