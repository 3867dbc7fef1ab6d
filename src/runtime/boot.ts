import { join } from "node:path";
import type { Config } from "../core/config.ts";
import { Cluster } from "../core/cluster.ts";
import { Hub } from "../core/hub.ts";
import { Gauge, hubMetrics, Registry } from "../core/metrics.ts";
import type { Fanout, Logger } from "../core/ports.ts";
import { RateLimiter } from "../core/rate-limiter.ts";
import { SocketGate } from "../core/socket-gate.ts";
import type { Context, MiddlewareHandler } from "hono";
import type { AppDeps, Readiness } from "../app.ts";
import { hubCounters, type UpgradeSocket } from "../counters.ts";
import type { Admin } from "../routes/admin.ts";
import { embedDeps } from "../stats.ts";
import type { Semaphore } from "../core/semaphore.ts";
import { defaultMaxSockets, openFileLimit } from "./fd-limit.ts";
import type { HttpPoster } from "../core/ports.ts";
import { OnlineTrigger } from "../core/webhook-trigger.ts";
import { WebhookWorker } from "../core/webhook-worker.ts";
import { fetchPoster } from "./fetch-poster.ts";
import { hmacHex } from "./signer.ts";
import { createPgBus } from "../db/pg-bus.ts";
import type { openPostgres } from "../db/postgres.ts";
import type { SqlStore } from "../db/store.ts";
import { systemClock } from "./clock.ts";
import { lockDataDir } from "./data-dir-lock.ts";
import { hmacSigner, randomSecret } from "./signer.ts";
import { randomBytes } from "node:crypto";

// What Node, Bun and Deno share: open the store, build the hub, answer
// readiness, shut down in order. Each entry file adds only its server.

/** What an entry file adds to build the app: its WebSocket upgrade, peer address and static files. */
export interface RuntimeParts {
  upgrade: UpgradeSocket;
  peerAddress(c: Context): string | undefined;
  staticFiles: MiddlewareHandler;
}

export interface Booted {
  hub: Hub;
  gate: SocketGate;
  registry: Registry;
  appDeps(parts: RuntimeParts): AppDeps;
  /** Present on PostgreSQL: fan-out and presence across instances. */
  cluster: Cluster | null;
  store: SqlStore;
  storeKind: "pglite" | "postgres";
  readiness(): Promise<Readiness>;
  /** Marks the instance as draining (readiness 503) and runs the shutdown steps. */
  shutdown(stopListening: () => void, waitForSockets: () => Promise<void>): Promise<number>;
}

export const PUBLIC_DIR = decodeURIComponent(new URL("../../public", import.meta.url).pathname);

type Opened =
  | { store: SqlStore; kind: "pglite"; pool?: undefined }
  | { store: Awaited<ReturnType<typeof openPostgres>>; kind: "postgres"; pool: Semaphore };

async function openStore(config: Config, log: Logger): Promise<Opened> {
  if (config.databaseUrl) {
    // Loaded on demand: importing PGlite costs ~225 MB of RSS, which a
    // PostgreSQL deployment should not carry (bench/NOTES.md).
    const { openPostgres } = await import("../db/postgres.ts");
    const store = await openPostgres(config.databaseUrl, config.pg, log, systemClock);
    return { store, kind: "postgres", pool: store.pool };
  }
  const release = lockDataDir(config.dataDir);
  try {
    const { openPglite } = await import("../db/pglite.ts");
    const store = await openPglite(join(config.dataDir, "pgdata"));
    const close = store.close;
    store.close = async () => {
      try {
        await close();
      } finally {
        release();
      }
    };
    return { store, kind: "pglite" };
  } catch (err) {
    release();
    throw err;
  }
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

export interface BootOptions {
  /** Outbound HTTP for webhooks; fetch unless the runtime has better (Node: undici pools). */
  poster?: HttpPoster;
  /** The open-file limit when /proc cannot tell (Deno's task passes `ulimit -n`). */
  openFileLimit?: number;
}

export async function boot(config: Config, log: Logger, fanout: Fanout, bootOpts: BootOptions = {}): Promise<Booted> {
  const opened = await openStore(config, log);
  const { store, kind } = opened;
  const secret = config.resumeSecret ?? (await store.ensureSetting("resume_secret", randomSecret()));
  const registry = new Registry();
  const metrics = hubMetrics(registry);
  const hub = new Hub(
    { store, fanout, clock: systemClock, signer: hmacSigner(secret), log, metrics },
    { ...config, messageBurst: config.messageRate.burst, messagePerSec: config.messageRate.perSec },
  );
  // Webhooks: milestone rules are joined by the increment statement; online
  // thresholds are watched as updates go out; a worker delivers the outbox.
  const wh = config.webhooks;
  await store.registerWebhookRules(wh.rules);
  store.fireMilestones(wh.rules);
  const trigger = new OnlineTrigger(wh.rules, store.outbox, log);
  if (trigger.active) hub.onUpdate = (key, online, total) => trigger.observe(key, online, total);
  let webhooks: WebhookWorker | null = null;
  if (wh.rules.length > 0) {
    const poster = bootOpts.poster ?? fetchPoster({ timeoutMs: wh.timeoutMs });
    webhooks = new WebhookWorker(wh.rules, store.outbox, poster, hmacHex, systemClock, log, {
      concurrency: wh.concurrency,
      perOrigin: wh.perOrigin,
      maxAttempts: wh.maxAttempts,
      retryBaseMs: wh.retryBaseMs,
      retryMaxMs: 5 * 60_000,
      pollMs: 250,
      lockMs: wh.timeoutMs + 5000,
    });
    webhooks.start();
    const w = webhooks;
    registry.add(new Gauge("headcount_webhooks_delivered_total", "Webhook events delivered by this instance", () => w.stats.delivered));
    registry.add(new Gauge("headcount_webhooks_failed_attempts_total", "Webhook delivery attempts that failed", () => w.stats.failedAttempts));
    registry.add(new Gauge("headcount_webhooks_dead_total", "Webhook events given up after WEBHOOK_MAX_ATTEMPTS", () => w.stats.dead));
    registry.add(new Gauge("headcount_webhooks_in_flight", "Webhook deliveries in progress", () => w.inFlight));
  }
  const closePoster = bootOpts.poster ? () => bootOpts.poster!.close() : async () => {};

  const fdLimit = openFileLimit() ?? bootOpts.openFileLimit;
  const gate = new SocketGate(config.maxSockets ?? defaultMaxSockets(fdLimit), config.maxSocketsPerIp);
  if (fdLimit !== undefined && gate.maxSockets > fdLimit - 32) {
    log.warn("MAX_SOCKETS is close to the open-file limit", { max_sockets: gate.maxSockets, open_file_limit: fdLimit });
  }
  const limiter = new RateLimiter({ burst: config.rateLimit.burst, perSec: config.rateLimit.perSec });
  let cluster: Cluster | null = null;
  if (opened.kind === "postgres") {
    const bus = createPgBus(config.databaseUrl!, opened.store.sql, log, { connectTimeoutS: config.pg.connectTimeoutS });
    cluster = new Cluster(hub, bus, store, systemClock, log, {
      instanceId: randomBytes(6).toString("hex"),
      presenceTtlMs: config.presenceTtlMs,
      presenceIntervalMs: 100,
    });
    await cluster.start();
  }

  const readiness = async (): Promise<Readiness> => {
    if (hub.draining) return { ready: false, reason: "shutting down" };
    try {
      await withTimeout(store.ping(), 2000, "database ping");
      return { ready: true };
    } catch (err) {
      return { ready: false, reason: `database unavailable: ${(err as Error).message}` };
    }
  };

  const shutdown = async (stopListening: () => void, waitForSockets: () => Promise<void>): Promise<number> => {
    const started = Date.now();
    const deadline = started + config.shutdownTimeoutMs;
    stopListening();
    let code = 0;
    try {
      await withTimeout(hub.drain(), Math.max(1, deadline - Date.now() - 500), "flushing visits");
    } catch (err) {
      log.error("shutdown: pending visits not committed", { err, pending: hub.batcher.pendingVisits });
      hub.batcher.abandon(new Error("server shutting down"));
      code = 1;
    }
    const closed = hub.closeAll();
    await withTimeout(waitForSockets(), Math.max(1, Math.min(1000, deadline - Date.now())), "closing sockets").catch(() => {});
    await withTimeout(cluster?.close() ?? Promise.resolve(), Math.max(1, deadline - Date.now()), "closing bus").catch(() => {});
    // Deliveries in flight finish or are left locked; another start claims them again.
    await webhooks?.stop(Math.max(1, Math.min(3000, deadline - Date.now() - 500)));
    await closePoster().catch(() => {});
    await withTimeout(store.close(), Math.max(1, deadline - Date.now()), "closing database").catch((err: unknown) => {
      log.error("shutdown: database close failed", { err });
      code = 1;
    });
    log.info("shutdown complete", { sockets_closed: closed, ms: Date.now() - started });
    return code;
  };

  const admin: Admin = {
    list: (limit, offset) => store.list(limit, offset),
    async set(key, total) {
      await store.setTotal(key, total);
      hub.resetTotal(key, total); // other instances hear it through the bus
    },
  };

  const topOnline = (): Array<[{ key: string }, number]> =>
    [...hub.rooms.values()]
      .filter((r) => r.online > 0)
      .sort((a, b) => b.online - a.online)
      .slice(0, 20)
      .map((r) => [{ key: r.key }, r.online]);
  registry.add(new Gauge("headcount_open_sockets", "WebSockets open on this instance", () => gate.open));
  registry.add(new Gauge("headcount_online", "Online now for the 20 busiest keys (all instances)", topOnline));
  registry.add(new Gauge("headcount_pending_visits", "Visits waiting for a commit", () => hub.batcher.pendingVisits));
  registry.add(new Gauge("headcount_rate_limited_total", "Requests refused by the per-address rate limit", () => limiter.refusals));
  registry.add(new Gauge("headcount_socket_cap_refusals_total", "Upgrades refused at the socket caps", () => gate.refusals));
  registry.add(new Gauge("headcount_rate_limit_buckets", "Client addresses tracked by the rate limiter", () => limiter.size));
  const pool = opened.pool;
  if (pool) {
    registry.add(new Gauge("headcount_pool_in_use", "Database connections in use", () => pool.inUse));
    registry.add(new Gauge("headcount_pool_waiting", "Queries waiting for a connection", () => pool.waiting));
    registry.add(new Gauge("headcount_pool_timeouts_total", "Queries refused after PG_ACQUIRE_TIMEOUT_MS", () => pool.timeouts));
  }
  if (cluster) {
    const c = cluster;
    registry.add(new Gauge("headcount_listen_reconnects_total", "Reconnects of the LISTEN connection", () => c.reconnects));
    registry.add(new Gauge("headcount_instances", "Instances heard from within PRESENCE_TTL_MS, this one included", () => c.instances));
  }

  const appDeps = (parts: RuntimeParts): AppDeps => ({
    counters: hubCounters(hub, parts.upgrade, gate),
    readiness,
    staticFiles: parts.staticFiles,
    embed: {
      ...embedDeps(hub, store, config),
      webhooks: async () => {
        if (wh.rules.length === 0) return { enabled: false, pending: 0, delivered: 0, dead: 0, recentDead: [] };
        const [stats, recentDead] = await Promise.all([store.outbox.stats(), store.outbox.recentDead(20)]);
        return { enabled: true, ...stats, recentDead };
      },
    },
    protection: {
      limiter,
      gate,
      allowedOrigins: config.allowedOrigins,
      trustProxyHeader: config.trustProxyHeader,
      adminToken: config.adminToken,
      now: () => Date.now(),
      peerAddress: parts.peerAddress,
    },
    adminToken: config.adminToken,
    admin,
    metrics: () => registry.render(),
    log,
  });

  return { hub, gate, registry, appDeps, cluster, store, storeKind: kind, readiness, shutdown };
}
