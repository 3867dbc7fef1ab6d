import { createApp, type HeadcountApp } from "../app.ts";
import type { Config } from "../core/config.ts";
import { Cluster } from "../core/cluster.ts";
import { Hub } from "../core/hub.ts";
import { keyCountingStore } from "../core/key-limit.ts";
import { Gauge, hubMetrics, Registry } from "../core/metrics.ts";
import type { Clock, Fanout, HttpPoster, Logger, Signer } from "../core/ports.ts";
import { RateLimiter } from "../core/rate-limiter.ts";
import { VisitorIds, type VisitorMac } from "../core/visitors.ts";
import { SocketCaps } from "../core/socket-caps.ts";
import type { HmacHex } from "../core/webhook-worker.ts";
import type { Admin } from "../routes/admin.ts";
import { EventStreams, STREAM_HEADERS, type StreamSink } from "../routes/event-stream.ts";
import type { AppDeps } from "../app.ts";
import type { Context } from "hono";
import { hubCounters, hubInsights } from "./hub-insights.ts";
import { registerServerMetrics } from "./metrics.ts";
import { openStore } from "./open-store.ts";
import { storeLimits } from "./limits.ts";
import { readiness } from "./readiness.ts";
import { shutdown } from "./shutdown.ts";
import { bindVisits, type BindVisit } from "./visits.ts";
import { startWebhooks } from "./webhooks.ts";

// The composition root every process runtime (Node, Bun, Deno) shares: open
// the store, build the hub and what runs beside it, and the app. A runtime
// entry adds only its server, its socket adapter and its signals.

/** An event stream written straight to a runtime's response: headers sent, the Response to hand back, and the client's going. */
export interface DirectStream {
  sink: StreamSink;
  response: Response;
  onGone(listener: () => void): void;
}

/** What a runtime brings: how it fans out, posts, signs, and what it knows about itself. */
export interface RuntimeParts {
  fanout: Fanout;
  /** Outbound HTTP for webhooks, made only when WEBHOOK_RULES has rules (Node's undici pools cost memory). */
  poster(): HttpPoster | Promise<HttpPoster>;
  clock: Clock;
  signer(secret: string): Signer;
  hmac: HmacHex;
  /** HMAC-SHA-256 truncated to 64 bits, for the day's visitor hashes. */
  visitorMac: VisitorMac;
  randomSecret(): string;
  instanceId: string;
  /** MAX_SOCKETS when unset: below the runtime's open-file limit. */
  defaultMaxSockets(): number;
  peerAddress: AppDeps["peerAddress"];
  staticFiles: AppDeps["staticFiles"];
  /** Exempts a long-lived response (an event stream) from the server's idle timeout, where it has one (Bun). */
  longLived?(c: Context): void;
  /**
   * Starts an event stream on the runtime's own response, where a streaming
   * Response costs too much per event (Node); undefined: a streaming Response.
   */
  directStream?(c: Context, headers: Record<string, string>): DirectStream | undefined;
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
  // MAX_KEYS and HISTORY_RETENTION_DAYS; the hub's commits tell the key count what they create.
  const limits = await storeLimits(config, store, opened.kind === "postgres", parts.clock, log, registry);
  const keys = limits.keys;
  // The day's salt is the database's, so every instance on it hashes alike (core/visitors.ts).
  const visitors = new VisitorIds(parts.visitorMac, (day) => store.day.salt(day, parts.randomSecret()));
  const hub = new Hub(
    { store: keyCountingStore(store, keys), keys, fanout: parts.fanout, clock: parts.clock, signer: parts.signer(secret), log, metrics: hubMetrics(registry), visitors },
    {
      ...config,
      historyRetentionDays: config.limits.historyRetentionDays,
      messageBurst: config.messageRate.burst,
      messagePerSec: config.messageRate.perSec,
      // The SQLite file commits (and fsyncs) synchronously: gather visits for a millisecond (core/batcher.ts).
      commitGatherMs: opened.kind === "sqlite" ? 1 : 0,
    },
  );
  limits.attach(hub);
  limits.start();
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
  registerServerMetrics(registry, { hub, caps, limiter, pool: opened.postgres?.pool, cluster, sqlite: opened.kind === "sqlite" ? opened.pragmas : undefined });

  const admin: Admin = {
    list: (limit, offset) => store.list(limit, offset),
    async set(key, total) {
      await store.setTotal(key, total);
      hub.resetTotal(key, total); // other instances hear it through the bus
    },
    // Deleting frees the key's place under MAX_KEYS; watchers see 0, flagged reset, as after a set.
    async delete(key) {
      if (await store.deleteKey(key)) keys.deleted(1);
      hub.resetTotal(key, 0);
    },
  };
  const bind = bindVisits(hub, caps);
  // Event streams are peers like sockets: same caps (through bind), same rooms, closed by hub.closeAll at shutdown.
  const streams = new EventStreams({ keepaliveMs: config.sseKeepaliveMs, maxBufferedBytes: config.limits.maxBufferedBytes });
  registry.add(new Gauge("headcount_event_streams", "Event streams (GET /sse) open on this instance", () => streams.size));
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
    openStream: (visit, c, headers) => {
      const join = (peer: Parameters<BindVisit>[1]) => bind(visit, peer);
      const direct = parts.directStream?.(c, { ...STREAM_HEADERS, ...headers });
      if (direct) {
        direct.onGone(streams.attach(join, direct.sink));
        return direct.response;
      }
      parts.longLived?.(c);
      return streams.open(join, c.req.raw.signal, headers);
    },
    countVisit: (visit) => hub.count(visit.key, visit.who),
    corsOrigins: config.corsOrigins,
    keys,
    log,
  });

  return {
    app,
    bind,
    hub,
    caps,
    storeKind: opened.kind,
    shutdown: (stopListening, socketsClosed) =>
      shutdown({
        hub,
        log,
        timeoutMs: config.shutdownTimeoutMs,
        stopListening,
        // The runtime's sockets and the app's event streams (their end events written).
        socketsClosed: async () => void (await Promise.all([socketsClosed(), streams.drained()])),
        after: [
          { name: "closing bus", stop: async () => cluster?.close() },
          { name: "stopping history pruning", stop: () => limits.stop() },
          // Deliveries in flight finish or stay locked; another start claims them again.
          { name: "stopping webhooks", stop: (ms) => webhooks.stop(Math.max(1, Math.min(3000, ms - 500))) },
          { name: "closing database", stop: () => store.close(), fatal: true },
        ],
      }),
    abort: () => store.close(),
  };
}
