// Cloudflare Workers entry: the same Hono app as every runtime, with Counters
// backed by one Durable Object per key (cloudflare-room.ts) and the cross-key
// view (top keys, site totals, admin list) from one index object
// (cloudflare-index.ts). Static files are served by Workers assets before the
// Worker runs (wrangler.toml [assets]), except the widget's modules, which run
// the Worker first so the app's CORS policy applies to them; a path that is no
// asset reaches the Worker and gets the app's 404 JSON.
// https://developers.cloudflare.com/workers/static-assets/routing/worker-script/
//
// Per isolate (so approximate, since Cloudflare runs many isolates): the
// per-address rate limiter and /metrics. Per object, that is per key: the
// socket caps and everything about a key's sockets.
//
// Types: Workers types come from the importable @cloudflare/workers-types
// module (`import type`), not its global script, so this file type-checks in
// the same `tsc -p .` program as the Node entry without the two runtimes'
// globals colliding. Where a Worker API meets the app's DOM-typed
// Request/Response, one cast at that boundary says so.
import type * as CF from "@cloudflare/workers-types/index.ts";
import type { Hono, MiddlewareHandler } from "hono";
import { createApp, type Counters, type Readiness, type Snapshot } from "../app.ts";
import { parseConfig, type Config } from "../core/config.ts";
import { HeadcountError } from "../core/errors.ts";
import { createLogger } from "../core/logger.ts";
import { Counter, Gauge, Registry } from "../core/metrics.ts";
import type { Logger } from "../core/ports.ts";
import { RateLimiter } from "../core/rate-limiter.ts";
import type { Admin, CounterRow } from "../routes/admin.ts";
import type { EmbedDeps, KeyNumbers, MinutePoint, SiteTotal, WebhookSummary } from "../routes/ports.ts";
import { INDEX_OBJECT, varsOf, type WorkerEnv } from "./cloudflare-room.ts";

export { CounterRoom } from "./cloudflare-room.ts";
export { CounterIndex } from "./cloudflare-index.ts";

/**
 * The object that answers /readyz. Its name has a control character, which
 * validateKey never lets through, so it can never be a counter's object.
 */
const READINESS_OBJECT = "\u0000readyz";

/** Calls the Durable Object for `name` (a validated key). */
async function room(env: WorkerEnv, name: string, path: string, params: Record<string, string>, init?: RequestInit): Promise<Response> {
  const stub = env.ROOMS.get(env.ROOMS.idFromName(name));
  const url = new URL(`https://room${path}`);
  for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
  const res = await stub.fetch(url.toString(), init as CF.RequestInit | undefined);
  return res as unknown as Response;
}

/** Calls the index object (cloudflare-index.ts). */
async function index(env: WorkerEnv, path: string, params: Record<string, string>): Promise<Response> {
  const stub = env.INDEX.get(env.INDEX.idFromName(INDEX_OBJECT));
  const url = new URL(`https://index${path}`);
  for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
  return (await stub.fetch(url.toString())) as unknown as Response;
}

async function json<T>(res: Response): Promise<T> {
  if (!res.ok) return failure(res);
  return (await res.json()) as T;
}

class RoomUnavailableError extends HeadcountError {
  constructor(message: string) {
    super(503, "unavailable", message);
    this.name = "RoomUnavailableError";
  }
}

async function failure(res: Response): Promise<never> {
  const body = (await res.json().catch(() => ({}))) as { message?: string };
  throw new RoomUnavailableError(body.message ?? `counter unavailable (${res.status})`);
}

/** Counters on Workers: every key's numbers and sockets live in that key's Durable Object. */
export function roomCounters(env: WorkerEnv): Counters {
  return {
    async snapshot(key) {
      const res = await room(env, key, "/snapshot", { key });
      if (!res.ok) return failure(res);
      return (await res.json()) as Snapshot;
    },
    // The upgrade request goes to the object, which accepts the socket and returns the 101.
    connect(c, key, resume, address) {
      const params: Record<string, string> = { key, address };
      if (resume !== null) params.resume = resume;
      return room(env, key, "/ws", params, { headers: c.req.raw.headers });
    },
  };
}

function readiness(env: WorkerEnv): () => Promise<Readiness> {
  return async () => {
    try {
      const res = await room(env, READINESS_OBJECT, "/ping", {});
      if (res.ok) return { ready: true };
      const body = (await res.json().catch(() => ({}))) as { message?: string };
      return { ready: false, reason: body.message ?? `status ${res.status}` };
    } catch (err) {
      return { ready: false, reason: `database unavailable: ${(err as Error).message}` };
    }
  };
}

/**
 * The dashboard's and the widget's data (routes/ports.ts): a key's history
 * from its own object; top keys and site totals from the index object.
 */
export function roomEmbed(env: WorkerEnv, config: Pick<Config, "corsOrigins" | "adminToken" | "webhooks">): EmbedDeps {
  return {
    stats: {
      top: async (limit) => json<KeyNumbers[]>(await index(env, "/top", { limit: String(limit) })),
      site: async (prefix) => json<SiteTotal>(await index(env, "/site", { prefix })),
      history: async (key, minutes) => json<MinutePoint[]>(await room(env, key, "/history", { key, minutes: String(minutes) })),
    },
    // The outbox is one table only on PostgreSQL; on the objects' SQLite each key has its own, and there is no summary.
    webhooks:
      config.webhooks.rules.length > 0 && env.HYPERDRIVE
        ? async () => ({ enabled: true, ...(await json<Omit<WebhookSummary, "enabled">>(await index(env, "/webhooks", {}))) })
        : undefined,
    corsOrigins: config.corsOrigins,
    adminToken: config.adminToken,
  };
}

/** The admin API: the list from the index (PostgreSQL when bound), a set through the key's own object, which broadcasts it. */
export function roomAdmin(env: WorkerEnv): Admin {
  return {
    list: async (limit, offset) => json<CounterRow[]>(await index(env, "/list", { limit: String(limit), offset: String(offset) })),
    async set(key, total) {
      await json(await room(env, key, "/set", { key, total: String(total) }, { method: "POST" }));
    },
  };
}

/** Workers assets for what the Worker runs first (wrangler.toml run_worker_first): the widget's modules. */
function assets(env: WorkerEnv): MiddlewareHandler {
  return async (c) => {
    if (!env.ASSETS) return c.notFound();
    const res = (await env.ASSETS.fetch(c.req.raw as unknown as CF.Request)) as unknown as Response;
    if (res.status === 404) return c.notFound();
    // A fetched response's headers are immutable; copy it so the CORS middleware can add its own.
    return new Response(res.body, res);
  };
}

interface Built {
  env: WorkerEnv;
  app: Hono;
  log: Logger;
  requests: Counter;
}

// One app per isolate: env is the same object for every request the isolate serves.
let built: Built | undefined;

function build(env: WorkerEnv): Built {
  if (built?.env === env) return built;
  const config = parseConfig(varsOf(env));
  const log = createLogger(config.logLevel, (line) => console.log(line), { runtime: "worker" });
  // Per isolate: each isolate has its own buckets, so a client spread over many isolates gets more.
  const limiter = new RateLimiter({ burst: config.rateLimit.burst, perSec: config.rateLimit.perSec });
  const registry = new Registry();
  const requests = registry.add(new Counter("headcount_isolate_requests_total", "Requests served by this isolate"));
  registry.add(new Gauge("headcount_rate_limited_total", "Requests this isolate refused at the per-address rate limit", () => limiter.refusals));
  registry.add(new Gauge("headcount_rate_limit_buckets", "Client addresses this isolate's rate limiter tracks", () => limiter.size));
  const started = Date.now();
  registry.add(new Gauge("headcount_isolate_uptime_seconds", "Seconds since this isolate built the app", () => Math.round((Date.now() - started) / 1000)));
  const app = createApp({
    counters: roomCounters(env),
    readiness: readiness(env),
    staticFiles: assets(env),
    embed: roomEmbed(env, config),
    protection: {
      limiter,
      // No gate: the socket caps are the key's object's (cloudflare-room.ts #accept).
      allowedOrigins: config.allowedOrigins,
      trustProxyHeader: config.trustProxyHeader,
      adminToken: config.adminToken,
      now: () => Date.now(),
      // Cloudflare's edge sets it to the client's address; wrangler dev sets it too (the local peer).
      peerAddress: (c) => c.req.header("cf-connecting-ip"),
    },
    adminToken: config.adminToken,
    admin: roomAdmin(env),
    metrics: () => registry.render(),
    log,
  });
  built = { env, app, log, requests };
  return built;
}

export default {
  fetch(request: Request, env: WorkerEnv, ctx: CF.ExecutionContext): Response | Promise<Response> {
    const b = build(env);
    b.requests.inc();
    return b.app.fetch(request, env, ctx);
  },
};
