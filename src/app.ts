import { Hono, type Context, type MiddlewareHandler } from "hono";
import { HTTPException } from "hono/http-exception";
import { HeadcountError } from "./core/errors.ts";
import { RefusedOrigins } from "./core/origins.ts";
import { validateKey } from "./core/keys.ts";
import type { Logger } from "./core/ports.ts";
import { mountAdmin, type Admin } from "./routes/admin.ts";
import type { KeyLimit } from "./core/key-limit.ts";
import { admit, admitKey, type AdmissionRules, type PendingAdmission, type UpgradeRequest } from "./routes/admission.ts";
import { adminGuard, isLocalRequest } from "./routes/auth.ts";
import { mountDaily } from "./routes/daily.ts";
import { mountDashboard } from "./routes/dashboard.ts";
import { mountCors, mountEmbed } from "./routes/embed.ts";
import type { Counters, Insights, WebhookSummary } from "./routes/insights.ts";
import { strictPathAfter, strictQuery } from "./routes/params.ts";
import { mountPixel, type CountVisit } from "./routes/pixel.ts";
import { mountRateLimit } from "./routes/rate-limit.ts";
import { mountSecurityHeaders } from "./routes/security-headers.ts";
import { mountStream, type OpenStream } from "./routes/sse.ts";

// Every HTTP route, written against Request/Response only, and the one
// decision a visit's handshake gets (routes/admission.ts). Capabilities come
// in through AppDeps; the app never reaches for a runtime or a database.

export interface Readiness {
  ready: boolean;
  reason?: string;
}

export interface AppDeps {
  counters: Counters;
  insights: Insights;
  /** Webhook outbox state for the dashboard; absent where there is no summary. */
  webhooks?: () => Promise<WebhookSummary>;
  /** The admin API; mounted only with ADMIN_TOKEN. */
  admin?: Admin;
  readiness(): Promise<Readiness>;
  /** Prometheus text for /metrics. */
  metrics?: () => string;
  /** Serves public/ (each runtime has its own static handler). */
  staticFiles?: MiddlewareHandler;
  /** Rate limits, origin allowlist, socket caps, proxy rules, admin token. */
  limits: AdmissionRules;
  /** The transport's peer address for an HTTP request, from the runtime. */
  peerAddress(c: Context): string | undefined;
  /** Without ADMIN_TOKEN, whether a request may read the dashboard's data (default: a loopback peer no proxy speaks for). */
  isLocal?(c: Context): boolean;
  /** Serves an admitted visit's event stream (/sse): the in-process hub, or the key's Durable Object. Absent: 404. */
  openStream?: OpenStream;
  /** Counts an admitted visit without a connection (/pixel.gif). Absent: 404. */
  countVisit?: CountVisit;
  /** CORS_ORIGINS: who may read the public JSON API and load the widget's module. */
  corsOrigins: "*" | readonly string[];
  /** MAX_KEYS where the app decides it (Node, Bun, Deno); on Workers the key's object asks the index. */
  keys?: KeyLimit;
  log: Logger;
}

export interface HeadcountApp {
  /** Every HTTP request but a visit's WebSocket handshake. */
  http: Hono;
  /** A visit's WebSocket handshake (routes/admission.ts isVisitUpgrade): refuse, or a Visit to upgrade and bind. */
  admit(req: UpgradeRequest, peerAddress: string | undefined): PendingAdmission;
}

export function createApp(deps: AppDeps): HeadcountApp {
  const app = new Hono();
  // Refused origins are remembered for the dashboard; a runtime may bring its own table (Workers: per isolate).
  const limits: AdmissionRules = deps.limits.refusedOrigins ? deps.limits : { ...deps.limits, refusedOrigins: new RefusedOrigins() };
  const token = limits.adminToken;
  const local = deps.isLocal ?? ((c: Context) => isLocalRequest(c, deps.peerAddress(c)));
  mountCors(app, deps.corsOrigins); // first: its headers wrap every answer below
  mountSecurityHeaders(app); // CSP and friends on the HTML pages (Workers: public/_headers)
  mountRateLimit(app, limits, deps.peerAddress);
  mountEmbed(app, deps.counters, deps.insights);
  mountDaily(app, deps.insights, limits.now, 30);
  mountDashboard(app, deps.insights, deps.webhooks, adminGuard({ adminToken: token, realm: "headcount dashboard", local }), {
    allowed: limits.allowedOrigins,
    refused: limits.refusedOrigins!,
  });
  if (deps.admin && token) mountAdmin(app, deps.admin, adminGuard({ adminToken: token, realm: "headcount admin", local }));

  if (deps.metrics) {
    const render = deps.metrics;
    app.use("/metrics", adminGuard({ adminToken: token, realm: "headcount metrics", local }));
    app.get("/metrics", (c) => c.text(render(), 200, { "Content-Type": "text/plain; version=0.0.4; charset=utf-8" }));
  }

  // Visits that are not a WebSocket: the event stream where upgrades are blocked, the pixel without JavaScript.
  const admitVisit = (req: UpgradeRequest, peer: string | undefined, transport: Parameters<typeof admit>[3]) =>
    admitKey(admit(req, peer, limits, transport), deps.keys);
  if (deps.openStream) mountStream(app, admitVisit, deps.peerAddress, deps.openStream);
  if (deps.countVisit) {
    let failures = 0;
    mountPixel(app, admitVisit, deps.peerAddress, deps.countVisit, (err) => {
      // One line per failure would flood the log during an outage.
      if (failures++ % 1000 === 0) deps.log.warn("pixel visit not counted", { err, failed_here: failures });
    });
  }

  app.get("/healthz", (c) => c.json({ status: "ok" }));

  app.get("/readyz", async (c) => {
    const r = await deps.readiness();
    return c.json(r.ready ? { status: "ready" } : { status: "unavailable", reason: r.reason }, r.ready ? 200 : 503);
  });

  app.get("/api/counters", async (c) => c.json(await deps.counters.snapshot(validateKey(strictQuery(c.req.url, "key")))));
  app.get("/api/counters/:key{.+}", async (c) =>
    c.json(await deps.counters.snapshot(validateKey(strictPathAfter(c.req.url, "/api/counters/")))),
  );

  // A handshake never gets here (runtimes hand it to `admit`); a plain GET does.
  app.get("/ws", (c) => {
    validateKey(strictQuery(c.req.url, "key"));
    c.header("Upgrade", "websocket");
    return c.json({ error: "upgrade_required", message: "this endpoint speaks WebSocket only" }, 426);
  });

  // public/_headers holds Workers assets' header rules (routes/security-headers.ts sends the same here): not a file to serve.
  app.all("/_headers", (c) => c.notFound());
  if (deps.staticFiles) app.use("/*", deps.staticFiles);

  app.notFound((c) => c.json({ error: "not_found", message: `no route for ${c.req.method} ${c.req.path}` }, 404));

  app.onError((err, c) => {
    if (err instanceof HeadcountError) return c.json({ error: err.code, message: err.message }, err.status as 400);
    // bearer-auth's refusals carry their own response; the validators' are plain: give them our shape.
    if (err instanceof HTTPException) return err.res ? err.getResponse() : c.json({ error: "bad_request", message: err.message }, err.status);
    if (err instanceof URIError) return c.json({ error: "bad_request", message: "malformed percent-encoding in URL" }, 400);
    deps.log.error("request failed", { err, path: c.req.path });
    return c.json({ error: "internal", message: "internal error" }, 500);
  });

  return { http: app, admit: (req, peerAddress) => admitKey(admit(req, peerAddress, limits), deps.keys) };
}
