import type * as CF from "@cloudflare/workers-types/index.ts";
import { DAY_MS, RETENTION_DEFAULTS } from "../core/retention.ts";
import type { StoreMaintenance } from "../db/maintenance.ts";

// HISTORY_RETENTION_DAYS on Workers. A key's object keeps its own history in
// its SQLite and prunes it from its alarm, which runs after midnight UTC
// following any day it counted (cloudflare-room-store.ts sets it for the
// visitors' roll-up) and for webhook deliveries: an object wakes for nothing
// else, and an idle key's history grows no more. (A key writes at most 1,440
// rows a day, so a run is a batch or two; with nothing to delete it is one
// index probe.) With Hyperdrive the history is one PostgreSQL table: the
// index object prunes it, hourly, from its own alarm (cloudflare-index.ts).

type Prunable = Pick<StoreMaintenance, "pruneHistory">;

/** Deletes every row past the retention, batch by batch; returns how many. */
export async function pruneOwnHistory(store: Prunable, days: number): Promise<number> {
  const before = Date.now() - days * DAY_MS;
  let total = 0;
  for (;;) {
    const n = await store.pruneHistory(before, RETENTION_DEFAULTS.batch);
    total += n;
    if (n < RETENTION_DEFAULTS.batch) return total;
  }
}

/** The index object with Hyperdrive: PostgreSQL's history, pruned and the next run set an interval (an hour) on. */
export async function prunePostgres(storage: CF.DurableObjectStorage, store: Prunable, days: number): Promise<void> {
  try {
    await pruneOwnHistory(store, days);
  } finally {
    await storage.setAlarm(Date.now() + RETENTION_DEFAULTS.intervalMs);
  }
}
