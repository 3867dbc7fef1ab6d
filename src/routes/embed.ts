import type { Hono } from "hono";
import { cors } from "hono/cors";
import { renderBadge } from "../core/badge.ts";
import { validateKey } from "../core/keys.ts";
import type { Counters, Insights } from "./insights.ts";
import { strictPathAfter, strictQuery } from "./params.ts";

// Everything another site uses: CORS on the public read-only API and on the
// widget's module, the site total, and the no-JS badge.

/** Paths another origin may read. The admin/dashboard data is deliberately not here: same origin only. */
const PUBLIC_PATHS = ["/api/counters", "/api/counters/*", "/api/site", "/api/daily", "/badge/*", "/client.js", "/widget.js"];

/** How fresh a badge or site total must be: short enough to follow the count, long enough to spare the server. */
export const PUBLIC_MAX_AGE_S = 30;

/** Mount before everything else, so every answer on these paths (a 429 too) is readable by the page. */
export function mountCors(app: Hono, corsOrigins: "*" | readonly string[]): void {
  const policy = cors({
    origin: corsOrigins === "*" ? "*" : [...corsOrigins],
    allowMethods: ["GET", "HEAD", "OPTIONS"],
    maxAge: 600,
  });
  for (const path of PUBLIC_PATHS) app.use(path, policy);
}

/** Mount after the rate limits, so they apply to the badge and the site total too. */
export function mountEmbed(app: Hono, counters: Counters, insights: Insights): void {
  // /api/site?prefix=/blog/ -> { prefix, total, keys, online, settleMs }. No prefix: every key.
  app.get("/api/site", async (c) => {
    const raw = strictQuery(c.req.url, "prefix") ?? "";
    const prefix = raw === "" ? "" : validateKey(raw);
    c.header("Cache-Control", `public, max-age=${PUBLIC_MAX_AGE_S}`);
    return c.json(await insights.site(prefix));
  });

  // /badge/<url-encoded key>.svg, e.g. /badge/%2Fblog%2Fhello.svg. Shows the total; it counts nothing
  // (image caches and proxies such as GitHub's camo would make any count meaningless).
  app.get("/badge/:key{.+\\.svg}", async (c) => {
    const key = validateKey(strictPathAfter(c.req.url, "/badge/").slice(0, -".svg".length));
    // ?metric=visitors: today's distinct visitors instead of the total.
    const visitors = c.req.query("metric") === "visitors";
    const numbers = await counters.snapshot(key);
    const svg = renderBadge({
      key,
      total: visitors ? numbers.visitors : numbers.total,
      label: c.req.query("label") ?? (visitors ? "visitors today" : undefined),
      color: c.req.query("color"),
    });
    return c.body(svg, 200, {
      "Content-Type": "image/svg+xml; charset=utf-8",
      "Cache-Control": `public, max-age=${PUBLIC_MAX_AGE_S}`,
      // Opened directly, the SVG is a document of ours: it may not run or fetch anything.
      "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
      "X-Content-Type-Options": "nosniff",
    });
  });
}
