import type { Cluster } from "../core/cluster.ts";
import type { Hub } from "../core/hub.ts";
import { Counter, Gauge, type Registry } from "../core/metrics.ts";
import type { RateLimiter } from "../core/rate-limiter.ts";
import type { Semaphore } from "../core/semaphore.ts";
import type { SocketCaps } from "../core/socket-caps.ts";

// What /metrics shows on Node, Bun and Deno beyond what the hub counts
// itself: read when scraped, so nothing is updated on the hot path.

export interface MetricSources {
  hub: Hub;
  caps: SocketCaps;
  limiter: RateLimiter;
  pool?: Semaphore;
  cluster?: Cluster;
  /** The embedded store's settings as SQLite reports them (journal mode, synchronous, locking mode). */
  sqlite?: () => Record<string, string>;
}

export function registerServerMetrics(registry: Registry, s: MetricSources): void {
  const { hub, caps, limiter, pool, cluster, sqlite } = s;
  const topOnline = (): Array<[{ key: string }, number]> =>
    [...hub.rooms()]
      .filter((r) => r.online > 0)
      .sort((a, b) => b.online - a.online)
      .slice(0, 20)
      .map((r) => [{ key: r.key }, r.online]);
  registry.add(new Gauge("headcount_open_sockets", "WebSockets and event streams open on this instance", () => caps.open));
  registry.add(new Gauge("headcount_online", "Online now for the 20 busiest keys (all instances)", topOnline));
  registry.add(new Gauge("headcount_pending_visits", "Visits waiting for a commit", () => hub.batcher.pendingVisits));
  registry.add(new Counter("headcount_rate_limited_total", "Requests refused by the per-address rate limit", () => limiter.refusals));
  registry.add(new Counter("headcount_socket_cap_refusals_total", "Upgrades refused at the socket caps", () => caps.refusals));
  registry.add(new Gauge("headcount_rate_limit_buckets", "Client addresses tracked by the rate limiter", () => limiter.size));
  if (pool) {
    registry.add(new Gauge("headcount_pool_in_use", "Database connections in use", () => pool.inUse));
    registry.add(new Gauge("headcount_pool_waiting", "Queries waiting for a connection", () => pool.waiting));
    registry.add(new Counter("headcount_pool_timeouts_total", "Queries refused after PG_ACQUIRE_TIMEOUT_MS", () => pool.timeouts));
  }
  if (sqlite) {
    registry.add(new Gauge("headcount_sqlite_info", "The embedded store's durability settings, as SQLite reports them (always 1)", () => [[sqlite(), 1]]));
  }
  if (cluster) {
    registry.add(new Counter("headcount_listen_reconnects_total", "Reconnects of the LISTEN connection", () => cluster.reconnects));
    registry.add(new Gauge("headcount_instances", "Instances heard from within PRESENCE_TTL_MS, this one included", () => cluster.instances));
  }
}
