// Cloudflare Workers entry: the same app as every runtime, its capabilities
// backed by Durable Objects (cloudflare-stubs.ts): one per key for its
// numbers and sockets (cloudflare-room.ts), one index for cross-key views
// (cloudflare-index.ts). A visit's handshake gets the app's one decision
// (app.admit); an accepted one goes to its key's object, which upgrades it.
// Static files are served by Workers assets before the Worker runs.
// https://developers.cloudflare.com/workers/static-assets/routing/worker-script/
//
// Per isolate (approximate, since Cloudflare runs many): the per-address rate
// limiter, /metrics and the refused origins the dashboard lists. Per object, that is per key: the socket caps.
import type * as CF from "@cloudflare/workers-types/index.ts";
import { createApp, type HeadcountApp } from "../app.ts";
import { parseConfig } from "../core/config.ts";
import { createLogger } from "../core/logger.ts";
import { Counter, Gauge, Registry } from "../core/metrics.ts";
import { RefusedOrigins } from "../core/origins.ts";
import { RateLimiter } from "../core/rate-limiter.ts";
import { isVisitUpgrade } from "../routes/admission.ts";
import { varsOf, type WorkerEnv } from "./cloudflare-env.ts";
import { assets, connectStream, connectVisit, countVisit, roomAdmin, roomCounters, roomInsights, roomReadiness, roomWebhooks } from "./cloudflare-stubs.ts";

export { CounterRoom } from "./cloudflare-room.ts";
export { CounterIndex } from "./cloudflare-index.ts";

// One app per isolate: env is the same object for every request the isolate serves.
let built: { env: WorkerEnv; app: HeadcountApp; requests: Counter } | undefined;

function build(env: WorkerEnv): NonNullable<typeof built> {
  if (built?.env === env) return built;
  const config = parseConfig(varsOf(env));
  const log = createLogger(config.logLevel, (line) => console.log(line), { runtime: "worker" });
  const limiter = new RateLimiter({ burst: config.rateLimit.burst, perSec: config.rateLimit.perSec });
  const registry = new Registry();
  const requests = registry.add(new Counter("headcount_isolate_requests_total", "Requests served by this isolate"));
  registry.add(new Counter("headcount_rate_limited_total", "Requests this isolate refused at the per-address rate limit", () => limiter.refusals));
  registry.add(new Gauge("headcount_rate_limit_buckets", "Client addresses this isolate's rate limiter tracks", () => limiter.size));
  const started = Date.now();
  registry.add(new Gauge("headcount_isolate_uptime_seconds", "Seconds since this isolate built the app", () => Math.round((Date.now() - started) / 1000)));
  // Cloudflare's edge sets it to the client's address; wrangler dev to the local peer.
  const peerAddress = (header: (name: string) => string | null | undefined) => header("cf-connecting-ip") ?? undefined;
  const app = createApp({
    counters: roomCounters(env),
    insights: roomInsights(env),
    webhooks: roomWebhooks(env, config),
    admin: roomAdmin(env),
    readiness: roomReadiness(env),
    metrics: () => registry.render(),
    staticFiles: assets(env),
    // No caps here: they are the key's object's (cloudflare-room.ts).
    limits: { limiter, allowedOrigins: config.allowedOrigins, refusedOrigins: new RefusedOrigins(50, "isolate"), trustProxyHeader: config.proxy.header,
      trustProxyHops: config.proxy.hops,
      ipv6PrefixBits: config.limits.ipv6Prefix, adminToken: config.adminToken, now: () => Date.now() },
    peerAddress: (c) => peerAddress((n) => c.req.header(n)),
    // In production the client is never loopback: without ADMIN_TOKEN the data is for `wrangler dev` on this machine only,
    // and not through a proxy (wrangler dev passes a client's forwarding headers on; it sets only CF-Connecting-IP).
    isLocal: (c) => /^(127\.|::1$)/.test(c.req.header("cf-connecting-ip") ?? "") && new URL(c.req.url).hostname.match(/^(localhost|127\.0\.0\.1)$/) !== null
      && ["forwarded", "x-forwarded-for", "x-real-ip", "true-client-ip"].every((h) => c.req.header(h) === undefined),
    // Event streams and pixel visits, like sockets, are the key's object's.
    openStream: (visit, c, headers) => connectStream(env, c.req.raw, visit, headers),
    countVisit: (visit) => countVisit(env, visit),
    corsOrigins: config.corsOrigins,
    log,
  });
  built = { env, app, requests };
  return built;
}

export default {
  async fetch(request: Request, env: WorkerEnv, ctx: CF.ExecutionContext): Promise<Response> {
    const { app, requests } = build(env);
    requests.inc();
    if (!isVisitUpgrade(request.url, request.headers.get("upgrade"))) return app.http.fetch(request, env, ctx);
    const header = (n: string) => request.headers.get(n);
    const decision = await app.admit({ method: request.method, url: request.url, header }, header("cf-connecting-ip") ?? undefined);
    return decision.refused ?? connectVisit(env, request, decision.visit);
  },
};
