import type * as CF from "@cloudflare/workers-types/index.ts";
import { DAY_MS, RETENTION_DEFAULTS } from "../core/retention.ts";
import type { StoreMaintenance } from "../db/maintenance.ts";

// HISTORY_RETENTION_DAYS on Workers. A key's object keeps its own history in
// its SQLite and prunes it from its alarm, at most once a day, and only while
// it has history: an object's first commit arms a day ahead, a run re-arms
// while rows remain, so an idle key's object stops waking once its history
// is gone. (A key writes at most 1,440 rows a day, so a run is a batch or
// two.) With Hyperdrive the history is one PostgreSQL table: the index object
// prunes it, hourly, from its own alarm (cloudflare-index.ts).

const PRUNE_AT = "history_prune_at";

/** The first commit of a woken object: arms the daily prune if it is not armed; returns when it is due. */
export function armPrune(storage: CF.DurableObjectStorage): number {
  const at = storage.kv.get<number>(PRUNE_AT);
  if (at !== undefined) return at;
  const next = Date.now() + DAY_MS;
  storage.kv.put(PRUNE_AT, next);
  return next;
}

/** Sets the alarm for `at` unless one is set sooner (a webhook delivery). */
export async function alarmBy(storage: CF.DurableObjectStorage, at: number): Promise<void> {
  const current = await storage.getAlarm();
  if (current === null || current > at) await storage.setAlarm(at);
}

/**
 * In the alarm: prunes what is past the retention if the prune is due, and
 * says when it is due next (null: no history left, nothing to wake for).
 */
export async function pruneIfDue(storage: CF.DurableObjectStorage, store: Pick<StoreMaintenance, "pruneHistory">, days: number): Promise<number | null> {
  const at = storage.kv.get<number>(PRUNE_AT);
  if (at === undefined) return null;
  if (at > Date.now()) return at;
  const before = Date.now() - days * DAY_MS;
  while ((await store.pruneHistory(before, RETENTION_DEFAULTS.batch)) === RETENTION_DEFAULTS.batch);
  if (storage.sql.exec("select 1 from visits_per_minute limit 1").toArray().length === 0) {
    storage.kv.delete(PRUNE_AT);
    return null;
  }
  const next = Date.now() + DAY_MS;
  storage.kv.put(PRUNE_AT, next);
  return next;
}

/** The index object with Hyperdrive: PostgreSQL's history, pruned every interval (hourly) from its alarm. */
export async function prunePostgres(storage: CF.DurableObjectStorage, store: Pick<StoreMaintenance, "pruneHistory">, days: number): Promise<void> {
  const before = Date.now() - days * DAY_MS;
  try {
    while ((await store.pruneHistory(before, RETENTION_DEFAULTS.batch)) === RETENTION_DEFAULTS.batch);
  } finally {
    await storage.setAlarm(Date.now() + RETENTION_DEFAULTS.intervalMs);
  }
}
