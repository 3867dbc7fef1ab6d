import { createApp, type HeadcountApp } from "../app.ts";
import type { Config } from "../core/config.ts";
import { Cluster } from "../core/cluster.ts";
import { Hub } from "../core/hub.ts";
import { hubMetrics, Registry } from "../core/metrics.ts";
import type { Clock, Fanout, HttpPoster, Logger, Signer } from "../core/ports.ts";
import { RateLimiter } from "../core/rate-limiter.ts";
import { SocketCaps } from "../core/socket-caps.ts";
import type { HmacHex } from "../core/webhook-worker.ts";
import type { Admin } from "../routes/admin.ts";
import type { AppDeps } from "../app.ts";
import { hubCounters, hubInsights } from "./hub-insights.ts";
import { registerServerMetrics } from "./metrics.ts";
import { openStore } from "./open-store.ts";
import { readiness } from "./readiness.ts";
import { shutdown } from "./shutdown.ts";
import { bindVisits, type BindVisit } from "./visits.ts";
import { startWebhooks } from "./webhooks.ts";

// The composition root every process runtime (Node, Bun, Deno) shares: open
// the store, build the hub and what runs beside it, and the app. A runtime
// entry adds only its server, its socket adapter and its signals.

/** What a runtime brings: how it fans out, posts, signs, and what it knows about itself. */
export interface RuntimeParts {
  fanout: Fanout;
  /** Outbound HTTP for webhooks, made only when WEBHOOK_RULES has rules (Node's undici pools cost memory). */
  poster(): HttpPoster | Promise<HttpPoster>;
  clock: Clock;
  signer(secret: string): Signer;
  hmac: HmacHex;
  randomSecret(): string;
  instanceId: string;
  /** MAX_SOCKETS when unset: below the runtime's open-file limit. */
  defaultMaxSockets(): number;
  peerAddress: AppDeps["peerAddress"];
  staticFiles: AppDeps["staticFiles"];
}

export interface Headcount {
  app: HeadcountApp;
  /** Binds an upgraded socket of an admitted visit to its room. */
  bind: BindVisit;
  hub: Hub;
  caps: SocketCaps;
  storeKind: "sqlite" | "postgres";
  /** Graceful shutdown; resolves with the exit code. */
  shutdown(stopListening: () => void, socketsClosed: () => Promise<void>): Promise<number>;
  /** Closes the store at once (start-up failed after it opened). */
  abort(): Promise<void>;
}

export async function startHeadcount(config: Config, log: Logger, parts: RuntimeParts): Promise<Headcount> {
  const opened = await openStore(config, log, parts.clock);
  const { store } = opened;
  const secret = config.resumeSecret ?? (await store.ensureSetting("resume_secret", parts.randomSecret()));
  const registry = new Registry();
  const hub = new Hub(
    { store, fanout: parts.fanout, clock: parts.clock, signer: parts.signer(secret), log, metrics: hubMetrics(registry) },
    {
      ...config,
      messageBurst: config.messageRate.burst,
      messagePerSec: config.messageRate.perSec,
      // The SQLite file commits (and fsyncs) synchronously: gather visits for a millisecond (core/batcher.ts).
      commitGatherMs: opened.kind === "sqlite" ? 1 : 0,
    },
  );
  const webhooks = await startWebhooks(config.webhooks, hub, store, { poster: parts.poster, hmac: parts.hmac, clock: parts.clock, log, registry });
  const caps = new SocketCaps(config.maxSockets ?? parts.defaultMaxSockets(), config.maxSocketsPerIp);
  const limiter = new RateLimiter({ burst: config.rateLimit.burst, perSec: config.rateLimit.perSec });
  let cluster: Cluster | undefined;
  if (opened.postgres) {
    const bus = opened.postgres.bus();
    cluster = new Cluster(hub, bus, store, parts.clock, log, {
      instanceId: parts.instanceId,
      presenceTtlMs: config.presenceTtlMs,
      presenceIntervalMs: 100,
    });
    await cluster.start();
  }
  registerServerMetrics(registry, { hub, caps, limiter, pool: opened.postgres?.pool, cluster });

  const admin: Admin = {
    list: (limit, offset) => store.list(limit, offset),
    async set(key, total) {
      await store.setTotal(key, total);
      hub.resetTotal(key, total); // other instances hear it through the bus
    },
  };
  const app = createApp({
    counters: hubCounters(hub),
    insights: hubInsights(hub, store),
    webhooks: () => webhooks.summary(),
    admin,
    readiness: readiness(hub, store),
    metrics: () => registry.render(),
    staticFiles: parts.staticFiles,
    limits: {
      limiter,
      caps,
      allowedOrigins: config.allowedOrigins,
      trustProxyHeader: config.proxy.header,
      trustProxyHops: config.proxy.hops,
      ipv6PrefixBits: config.limits.ipv6Prefix,
      adminToken: config.adminToken,
      now: () => parts.clock.now(),
    },
    peerAddress: parts.peerAddress,
    corsOrigins: config.corsOrigins,
    log,
  });

  return {
    app,
    bind: bindVisits(hub, caps),
    hub,
    caps,
    storeKind: opened.kind,
    shutdown: (stopListening, socketsClosed) =>
      shutdown({
        hub,
        log,
        timeoutMs: config.shutdownTimeoutMs,
        stopListening,
        socketsClosed,
        after: [
          { name: "closing bus", stop: async () => cluster?.close() },
          // Deliveries in flight finish or stay locked; another start claims them again.
          { name: "stopping webhooks", stop: (ms) => webhooks.stop(Math.max(1, Math.min(3000, ms - 500))) },
          { name: "closing database", stop: () => store.close(), fatal: true },
        ],
      }),
    abort: () => store.close(),
  };
}
