import type { Hono, MiddlewareHandler } from "hono";
import { validateKey } from "../core/keys.ts";
import type { RefusedOrigins } from "../core/origins.ts";
import { boundedInt } from "../core/schemas.ts";
import type { Insights, WebhookSummary } from "./insights.ts";
import { strictQuery } from "./params.ts";
import { query } from "./validate.ts";

// The dashboard: a static page (public/dashboard.html) and the JSON it polls,
// behind the admin guard (routes/auth.ts). The page itself holds no data, so
// it is served to anyone.

export const MAX_HISTORY_MINUTES = 7 * 24 * 60;
export const MAX_TOP = 100;

const TOP = { limit: boundedInt(1, MAX_TOP, 10) };
const HISTORY = { minutes: boundedInt(1, MAX_HISTORY_MINUTES, 180) };

const NO_WEBHOOKS: WebhookSummary = { enabled: false, pending: 0, delivered: 0, dead: 0, recentDead: [] };

/** What the dashboard shows about ALLOWED_ORIGINS: the setting and the origins refused lately. */
export interface OriginsView {
  allowed: "*" | readonly string[];
  refused: RefusedOrigins;
}

export function mountDashboard(
  app: Hono,
  insights: Insights,
  webhooks: (() => Promise<WebhookSummary>) | undefined,
  guard: MiddlewareHandler,
  origins?: OriginsView,
): void {
  // One URL for the page on every runtime: re-dispatch to the static file
  // (Workers' asset handling already maps /dashboard to dashboard.html).
  app.get("/dashboard", (c) => app.fetch(new Request(new URL("/dashboard.html", c.req.url), { headers: c.req.raw.headers }), c.env));

  for (const path of ["/api/top", "/api/history", "/api/webhooks", "/api/origins"]) {
    app.use(path, async (c, next) => {
      c.header("Cache-Control", "no-store");
      await next();
    });
    app.use(path, guard);
  }

  // /api/top?limit=10 -> { keys: [{ key, total, online }] }, busiest first.
  app.get("/api/top", query(TOP), async (c) => {
    const { limit } = c.req.valid("query");
    return c.json({ keys: await insights.top(limit) });
  });

  // /api/webhooks -> { enabled, pending, delivered, dead, recentDead: [...] }
  app.get("/api/webhooks", async (c) => c.json(webhooks ? await webhooks() : NO_WEBHOOKS));

  // /api/origins -> { allowed, scope, refusedTotal, refused: [{ origin, count, lastAt }] }: pages turned away
  // at the socket (ALLOWED_ORIGINS), most refused first, for this process (Workers: this isolate).
  app.get("/api/origins", (c) =>
    c.json({
      allowed: origins?.allowed ?? "*",
      scope: origins?.refused.scope ?? "process",
      refusedTotal: origins?.refused.total ?? 0,
      refused: origins?.refused.list() ?? [],
    }),
  );

  // /api/history?key=/&minutes=180 -> { key, minutes, now, points: [{ minute, visits }] }.
  // A query parameter, not /api/counters/<key>/history: keys may contain slashes and end in "history".
  app.get("/api/history", query(HISTORY), async (c) => {
    const key = validateKey(strictQuery(c.req.url, "key"));
    const { minutes } = c.req.valid("query");
    const points = await insights.history(key, minutes);
    return c.json({ key, minutes, now: Date.now(), points });
  });
}
