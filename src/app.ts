import { Hono, type Context, type MiddlewareHandler } from "hono";
import { HeadcountError } from "./core/errors.ts";
import { validateKey } from "./core/keys.ts";
import type { Logger } from "./core/ports.ts";
import { mountDashboard } from "./routes/dashboard.ts";
import { mountCors, mountEmbed } from "./routes/embed.ts";
import { mountAdmin, type Admin } from "./routes/admin.ts";
import { hasBearer, unauthorized } from "./routes/auth.ts";
import { clientAddress, mountProtection, type Protection } from "./routes/protection.ts";
import { checkHandshake } from "./routes/handshake.ts";
import { strictPathAfter, strictQuery } from "./routes/params.ts";
import type { EmbedDeps } from "./routes/ports.ts";

// Every HTTP route, written against Request/Response only. Capabilities come
// in through AppDeps; the app never reaches for a runtime or a database.

export interface Snapshot {
  key: string;
  total: number;
  online: number;
}

/** How this deployment counts: a Hub in-process (Node, Bun, Deno) or a Durable Object (Workers). */
export interface Counters {
  snapshot(key: string): Promise<Snapshot>;
  /** Accepts the WebSocket upgrade for an already validated key and returns the runtime's response. */
  connect(c: Context, key: string, resume: string | null, address: string): Response | Promise<Response>;
}

export interface Readiness {
  ready: boolean;
  reason?: string;
}

export interface AppDeps {
  counters: Counters;
  readiness(): Promise<Readiness>;
  /** Serves public/ (each runtime has its own static handler). */
  staticFiles?: MiddlewareHandler;
  /** Widget CORS, badge, site totals and the dashboard's data (src/routes/); off when absent. */
  embed?: EmbedDeps;
  /** Rate limits, origin allowlist, socket caps; absent only in tests of the bare routes. */
  protection?: Protection;
  /** ADMIN_TOKEN: enables /admin and protects /metrics. */
  adminToken?: string;
  admin?: Admin;
  /** Prometheus text for /metrics. */
  metrics?: () => string;
  log: Logger;
}

function keyFromPath(c: Context): string {
  return validateKey(strictPathAfter(c.req.url, "/api/counters/"));
}

export function createApp(deps: AppDeps): Hono {
  const app = new Hono();
  if (deps.embed) mountCors(app, deps.embed); // first: its headers wrap every answer below
  if (deps.protection) mountProtection(app, deps.protection);
  if (deps.embed) mountEmbed(app, deps.counters, deps.embed);
  if (deps.embed) mountDashboard(app, deps.embed);
  if (deps.admin && deps.adminToken) mountAdmin(app, deps.admin, deps.adminToken);

  if (deps.metrics) {
    const render = deps.metrics;
    app.get("/metrics", (c) => {
      if (deps.adminToken && !hasBearer(c, deps.adminToken)) return unauthorized(c, "headcount metrics");
      return c.text(render(), 200, { "Content-Type": "text/plain; version=0.0.4; charset=utf-8" });
    });
  }

  app.get("/healthz", (c) => c.json({ status: "ok" }));

  app.get("/readyz", async (c) => {
    const r = await deps.readiness();
    return c.json(r.ready ? { status: "ready" } : { status: "unavailable", reason: r.reason }, r.ready ? 200 : 503);
  });

  app.get("/api/counters", async (c) => c.json(await deps.counters.snapshot(validateKey(strictQuery(c.req.url, "key")))));
  app.get("/api/counters/:key{.+}", async (c) => c.json(await deps.counters.snapshot(keyFromPath(c))));

  app.get("/ws", (c) => {
    const key = validateKey(strictQuery(c.req.url, "key"));
    if (c.req.header("upgrade")?.toLowerCase() !== "websocket") {
      c.header("Upgrade", "websocket");
      return c.json({ error: "upgrade_required", message: "this endpoint speaks WebSocket only" }, 426);
    }
    const problem = checkHandshake(c);
    if (problem) {
      for (const [name, value] of Object.entries(problem.headers ?? {})) c.header(name, value);
      return c.json({ error: "bad_handshake", message: problem.message }, problem.status);
    }
    const address = deps.protection ? clientAddress(c, deps.protection) : "unknown";
    return deps.counters.connect(c, key, strictQuery(c.req.url, "resume") ?? null, address);
  });

  if (deps.staticFiles) app.use("/*", deps.staticFiles);

  app.notFound((c) => c.json({ error: "not_found", message: `no route for ${c.req.method} ${c.req.path}` }, 404));

  app.onError((err, c) => {
    if (err instanceof HeadcountError) {
      return c.json({ error: err.code, message: err.message }, err.status as 400);
    }
    if (err instanceof URIError) {
      return c.json({ error: "bad_request", message: "malformed percent-encoding in URL" }, 400);
    }
    deps.log.error("request failed", { err, path: c.req.path });
    return c.json({ error: "internal", message: "internal error" }, 500);
  });

  return app;
}
