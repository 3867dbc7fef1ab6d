import type { Context } from "hono";
import { constantTimeEqual } from "../core/resume.ts";

/** True when the request carries `Authorization: Bearer <token>` for this token (compared in constant time). */
export function hasBearer(c: Context, token: string): boolean {
  const m = /^Bearer +(\S+)$/i.exec(c.req.header("authorization") ?? "");
  return m !== null && constantTimeEqual(m[1]!, token);
}

export function unauthorized(c: Context, realm: string): Response {
  c.header("WWW-Authenticate", `Bearer realm="${realm}"`);
  return c.json({ error: "unauthorized", message: "this needs the admin token (Authorization: Bearer …)" }, 401);
}
