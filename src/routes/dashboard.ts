import type { Hono } from "hono";
import { HeadcountError } from "../core/errors.ts";
import { validateKey } from "../core/keys.ts";
import { hasBearer, unauthorized } from "./auth.ts";
import type { EmbedDeps } from "./ports.ts";
import { strictQuery } from "./params.ts";

// The dashboard: a static page (public/dashboard.html) and two JSON endpoints
// it polls. With ADMIN_TOKEN set the endpoints want `Authorization: Bearer
// <token>`; the page asks for the token once and keeps it in sessionStorage.
// The page itself holds no data, so it is served to anyone.

export const MAX_HISTORY_MINUTES = 7 * 24 * 60;
export const MAX_TOP = 100;

function bounded(raw: string | undefined, fallback: number, max: number, name: string): number {
  if (raw === undefined || raw === "") return fallback;
  if (!/^\d{1,7}$/.test(raw) || Number(raw) < 1) throw new HeadcountError(400, "bad_request", `${name} must be a whole number from 1 to ${max}`);
  return Math.min(Number(raw), max);
}

export function mountDashboard(app: Hono, deps: EmbedDeps): void {
  // One URL for the page on every runtime: re-dispatch to the static file
  // (Workers' asset handling already maps /dashboard to dashboard.html).
  app.get("/dashboard", (c) => app.fetch(new Request(new URL("/dashboard.html", c.req.url), { headers: c.req.raw.headers }), c.env));

  for (const path of ["/api/top", "/api/history", "/api/webhooks"]) {
    app.use(path, async (c, next) => {
      c.header("Cache-Control", "no-store");
      if (deps.adminToken !== undefined && !hasBearer(c, deps.adminToken)) return unauthorized(c, "headcount dashboard");
      await next();
    });
  }

  // /api/top?limit=10 -> { keys: [{ key, total, online }] }, busiest first.
  app.get("/api/top", async (c) => {
    const limit = bounded(c.req.query("limit"), 10, MAX_TOP, "limit");
    return c.json({ keys: await deps.stats.top(limit) });
  });

  // /api/webhooks -> { enabled, pending, delivered, dead, recentDead: [...] }
  app.get("/api/webhooks", async (c) => {
    const empty = { enabled: false, pending: 0, delivered: 0, dead: 0, recentDead: [] };
    return c.json(deps.webhooks ? await deps.webhooks() : empty);
  });

  // /api/history?key=/&minutes=180 -> { key, minutes, now, points: [{ minute, visits }] }.
  // A query parameter, not /api/counters/<key>/history: keys may contain slashes and end in "history".
  app.get("/api/history", async (c) => {
    const key = validateKey(strictQuery(c.req.url, "key"));
    const minutes = bounded(c.req.query("minutes"), 180, MAX_HISTORY_MINUTES, "minutes");
    const points = await deps.stats.history(key, minutes);
    return c.json({ key, minutes, now: Date.now(), points });
  });
}
