import type * as CF from "@cloudflare/workers-types/index.ts";
import type { MiddlewareHandler } from "hono";
import type { Readiness } from "../app.ts";
import type { Config } from "../core/config.ts";
import { HeadcountError } from "../core/errors.ts";
import type { Admin, CounterRow } from "../routes/admin.ts";
import type { Visit } from "../routes/admission.ts";
import type { Counters, Insights, KeyNumbers, MinutePoint, SiteTotal, WebhookSummary } from "../routes/insights.ts";
import type { DailyPoint } from "../core/visitors.ts";
import type { WorkerEnv } from "./cloudflare-env.ts";
import { withWho } from "./cloudflare-who.ts";
import { INDEX_OBJECT } from "./cloudflare-report.ts";

// The app's capabilities on Workers, as calls to Durable Objects: a key's
// numbers, history, admin set and sockets live in that key's object
// (cloudflare-room.ts); top keys, site totals and the admin list in the index
// object (cloudflare-index.ts). Where a Worker API meets the app's DOM-typed
// Request/Response, one cast at that boundary says so.

/** The object that answers /readyz: a control character in its name, so never a counter's object. */
const READINESS_OBJECT = "\u0000readyz";

async function call(ns: CF.DurableObjectNamespace, name: string, path: string, params: Record<string, string>, init?: RequestInit): Promise<Response> {
  const url = new URL(`https://object${path}`);
  for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
  return (await ns.get(ns.idFromName(name)).fetch(url.toString(), init as CF.RequestInit | undefined)) as unknown as Response;
}

class RoomUnavailableError extends HeadcountError {
  constructor(message: string) {
    super(503, "unavailable", message);
    this.name = "RoomUnavailableError";
  }
}

async function json<T>(res: Response): Promise<T> {
  if (res.ok) return (await res.json()) as T;
  const body = (await res.json().catch(() => ({}))) as { error?: string; message?: string };
  // A refusal (403 past MAX_KEYS, 400) keeps its status; anything else is the object being unavailable.
  if (res.status < 500 && body.error && body.message) throw new HeadcountError(res.status, body.error, body.message);
  throw new RoomUnavailableError(body.message ?? `counter unavailable (${res.status})`);
}

/**
 * Keys this isolate has seen the index vouch for. A key the index does not
 * know was never visited: its reads answer 0 without waking (and so creating)
 * its object. Once known, a key stays known; the set is bounded (oldest out).
 */
const known = new Set<string>();
const KNOWN_MAX = 10_000;

async function visited(env: WorkerEnv, key: string): Promise<boolean> {
  if (known.has(key)) return true;
  const { known: yes } = await json<{ known: boolean }>(await call(env.INDEX, INDEX_OBJECT, "/known", { key }));
  if (!yes) return false;
  if (known.size >= KNOWN_MAX) known.delete(known.values().next().value!);
  known.add(key);
  return true;
}

export function roomCounters(env: WorkerEnv): Counters {
  return {
    snapshot: async (key) =>
      (await visited(env, key)) ? json<Required<KeyNumbers>>(await call(env.ROOMS, key, "/snapshot", { key })) : { key, total: 0, online: 0, visitors: 0, bots: 0 },
  };
}

/** What a key's object needs of a visit in its URL: its key, address (for the caps and the hash) and resume token. */
function visitParams(visit: Visit): Record<string, string> {
  const params: Record<string, string> = { key: visit.key, address: visit.address };
  if (visit.resume !== null) params.resume = visit.resume;
  return params;
}

/** An admitted visit goes to its key's object, which accepts the socket and returns the 101. */
export function connectVisit(env: WorkerEnv, request: Request, visit: Visit): Promise<Response> {
  return call(env.ROOMS, visit.key, "/ws", visitParams(visit), { headers: withWho(visit, request.headers) });
}

/** An admitted visit's event stream is held by its key's object (cloudflare-room.ts), which returns the streaming response. */
export async function connectStream(env: WorkerEnv, request: Request, visit: Visit, headers: Record<string, string>): Promise<Response> {
  const res = await call(env.ROOMS, visit.key, "/sse", visitParams(visit), { headers: withWho(visit, request.headers), signal: request.signal });
  // An object's response has immutable headers, which the app's middleware adds to: a copy shares the body.
  const copy = new Response(res.body, res);
  if (res.status === 200) for (const [name, value] of Object.entries(headers)) copy.headers.set(name, value);
  return copy;
}

/** A visit without a connection (the pixel), counted by its key's object; resolves once committed. */
export async function countVisit(env: WorkerEnv, visit: Visit): Promise<void> {
  await json(await call(env.ROOMS, visit.key, "/count", visitParams(visit), { method: "POST", headers: withWho(visit) }));
}

export function roomInsights(env: WorkerEnv): Insights {
  return {
    top: async (limit) => json<KeyNumbers[]>(await call(env.INDEX, INDEX_OBJECT, "/top", { limit: String(limit) })),
    site: async (prefix) => json<SiteTotal>(await call(env.INDEX, INDEX_OBJECT, "/site", { prefix })),
    history: async (key, minutes) =>
      (await visited(env, key)) ? json<MinutePoint[]>(await call(env.ROOMS, key, "/history", { key, minutes: String(minutes) })) : [],
    // A key's days are its object's; the server's are the index's (cloudflare-index.ts).
    daily: async (key, from) => {
      if (key === null) return json<DailyPoint[]>(await call(env.INDEX, INDEX_OBJECT, "/daily", { from }));
      return (await visited(env, key)) ? json<DailyPoint[]>(await call(env.ROOMS, key, "/daily", { key, from })) : [];
    },
  };
}

/** The outbox is one table only on PostgreSQL; on the objects' SQLite each key has its own, and there is no summary. */
export function roomWebhooks(env: WorkerEnv, config: Config): (() => Promise<WebhookSummary>) | undefined {
  if (config.webhooks.rules.length === 0 || !env.HYPERDRIVE) return undefined;
  return async () => ({ enabled: true, ...(await json<Omit<WebhookSummary, "enabled">>(await call(env.INDEX, INDEX_OBJECT, "/webhooks", {}))) });
}

/** The list from the index (PostgreSQL when bound); a set through the key's own object, which broadcasts it. */
export function roomAdmin(env: WorkerEnv): Admin {
  return {
    list: async (limit, offset) => json<CounterRow[]>(await call(env.INDEX, INDEX_OBJECT, "/list", { limit: String(limit), offset: String(offset) })),
    async set(key, total) {
      await json(await call(env.ROOMS, key, "/set", { key, total: String(total) }, { method: "POST" }));
    },
    async delete(key) {
      // The index learns it from the object, which forgets the key first (cloudflare-room.ts #delete).
      if (await visited(env, key)) await json(await call(env.ROOMS, key, "/delete", { key }, { method: "POST" }));
      known.delete(key);
    },
  };
}

export function roomReadiness(env: WorkerEnv): () => Promise<Readiness> {
  return async () => {
    try {
      const res = await call(env.ROOMS, READINESS_OBJECT, "/ping", {});
      if (res.ok) return { ready: true };
      const body = (await res.json().catch(() => ({}))) as { message?: string };
      return { ready: false, reason: body.message ?? `status ${res.status}` };
    } catch (err) {
      return { ready: false, reason: `database unavailable: ${(err as Error).message}` };
    }
  };
}

/** Workers assets for what the Worker runs first (wrangler.toml run_worker_first): the widget's modules. */
export function assets(env: WorkerEnv): MiddlewareHandler {
  return async (c) => {
    if (!env.ASSETS) return c.notFound();
    const res = (await env.ASSETS.fetch(c.req.raw as unknown as CF.Request)) as unknown as Response;
    if (res.status === 404) return c.notFound();
    // A fetched response's headers are immutable; copy it so the CORS middleware can add its own.
    return new Response(res.body, res);
  };
}
