import type { Config } from "../core/config.ts";
import type { Hub } from "../core/hub.ts";
import { KeyLimit } from "../core/key-limit.ts";
import { Counter, Gauge, type Registry } from "../core/metrics.ts";
import type { Clock, Logger, TimerHandle } from "../core/ports.ts";
import { HistoryRetention, RETENTION_DEFAULTS } from "../core/retention.ts";
import type { SqlStore } from "../db/store.ts";

// What keeps a process runtime's store bounded (Node, Bun, Deno): MAX_KEYS
// (core/key-limit.ts) and HISTORY_RETENTION_DAYS (core/retention.ts), with
// their metrics. A Durable Object does both its own way (cloudflare-index.ts,
// cloudflare-room.ts).

/** PostgreSQL is shared: other instances create keys, so the count is taken again this often. */
const KEY_RECOUNT_MS = 60_000;

export interface StoreLimits {
  keys: KeyLimit;
  /** The hub, once built: a key with a live room that has a total is known to exist without a lookup. */
  attach(hub: Hub): void;
  /** Starts the history pruning and (PostgreSQL) the recount. */
  start(): void;
  stop(): Promise<void>;
}

export async function storeLimits(config: Config, store: SqlStore, shared: boolean, clock: Clock, log: Logger, registry: Registry): Promise<StoreLimits> {
  let hub: Hub | undefined;
  const keys = new KeyLimit(config.limits.maxKeys, async (key) => (hub?.room(key)?.total ?? 0) > 0 || (await store.totals([key])).has(key));
  keys.load(await store.countKeys());
  const retention = new HistoryRetention((before, limit) => store.pruneHistory(before, limit), clock, log, {
    ...RETENTION_DEFAULTS,
    days: config.limits.historyRetentionDays,
  });
  registry.add(new Gauge("headcount_keys", "Distinct keys in the store (as last counted, plus those created since)", () => keys.count));
  registry.add(new Gauge("headcount_max_keys", "MAX_KEYS", () => keys.max));
  registry.add(new Counter("headcount_key_limit_refusals_total", "Visits to new keys refused at MAX_KEYS", () => keys.refusals));
  registry.add(new Counter("headcount_history_pruned_total", "Per-minute history rows deleted past HISTORY_RETENTION_DAYS", () => retention.pruned));

  let recount: TimerHandle | null = null;
  const again = () => {
    recount = clock.setTimeout(() => {
      store.countKeys().then(
        (n) => keys.load(n),
        (err: unknown) => log.warn("keys not counted", { err }),
      ).finally(() => recount !== null && again());
    }, KEY_RECOUNT_MS);
  };
  return {
    keys,
    attach: (h) => void (hub = h),
    start() {
      retention.start();
      if (shared) again();
    },
    async stop() {
      if (recount !== null) clock.clearTimeout(recount);
      recount = null;
      await retention.stop();
    },
  };
}
