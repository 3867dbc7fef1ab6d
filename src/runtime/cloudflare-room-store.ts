import type * as CF from "@cloudflare/workers-types/index.ts";
import { WriteBatcher } from "../core/batcher.ts";
import type { Config } from "../core/config.ts";
import type { CounterStore, DayStore, Logger, Outbox, Signer } from "../core/ports.ts";
import { daysBefore, utcDay, VisitorIds, type DayBatch } from "../core/visitors.ts";
import { milestonesCrossed, ruleMatches } from "../core/webhook-rules.ts";
import { OnlineTrigger } from "../core/webhook-trigger.ts";
import { WebhookWorker } from "../core/webhook-worker.ts";
import { openDurableSqlite, type DurableSqliteStore } from "../db/sqlite/durable.ts";
import { openHyperdrive } from "../db/hyperdrive.ts";
import { latestMigrationHash } from "../db/postgres-migrate.ts";
import { systemClock } from "./clock.ts";
import { fetchPoster } from "./fetch-poster.ts";
import { hmacHex, hmacSigner, randomSecret, visitorMac } from "./signer.ts";

// What one key's Durable Object counts with: its own SQLite (default) or
// PostgreSQL through Hyperdrive, the resume secret, a group-commit batcher,
// and the webhook wiring that sets the object's alarm whenever an event is
// written (the alarm delivers: cloudflare-room.ts).

/** What a room needs of its store: the object's SQLite or PostgreSQL through Hyperdrive. */
export type RoomStore = CounterStore &
  Pick<DurableSqliteStore, "ensureSetting" | "setTotal" | "outbox" | "history" | "deleteKey" | "pruneHistory"> & {
    readonly day: DayStore;
    /** The object's SQLite knows its own outbox; PostgreSQL's is shared, so it has none. */
    nextDue?(): number | null;
  };

export interface RoomResources {
  store: RoomStore;
  signer: Signer;
  batcher: WriteBatcher;
  trigger: OnlineTrigger;
}

async function openStore(storage: CF.DurableObjectStorage, hyperdrive: CF.Hyperdrive | undefined, config: Config, wake: () => void): Promise<RoomStore> {
  const rules = config.webhooks.rules;
  if (!hyperdrive) return openDurableSqlite(storage, { rules, onFired: wake });
  const store = openHyperdrive(hyperdrive.connectionString, config.pg.connectTimeoutS);
  // Each object migrates once per migration set and database, then remembers it in its own storage.
  const database = `${hyperdrive.host}:${hyperdrive.port}/${hyperdrive.database}`;
  const applied = `${latestMigrationHash()} ${database}`;
  if (storage.kv.get<string>("pg_migrated") !== applied) {
    await store.migrate();
    storage.kv.put("pg_migrated", applied);
  }
  // The increment statement joins webhook_rules; the rules are registered once per rule set and database.
  const registered = `${database} ${JSON.stringify(rules.map((r) => r.id))}`;
  if (storage.kv.get<string>("pg_webhook_rules") !== registered) {
    await store.registerWebhookRules(rules);
    storage.kv.put("pg_webhook_rules", registered);
  }
  store.fireMilestones(rules);
  return store;
}

/** Opens everything; `wake` sets the alarm (an event was written and is due now). */
export async function openRoomResources(
  storage: CF.DurableObjectStorage,
  hyperdrive: CF.Hyperdrive | undefined,
  config: Config,
  log: Logger,
  wake: () => void,
  /** The day's salt, from the index object, so every key's object hashes alike (cloudflare-index.ts). */
  salt: (day: string) => Promise<string>,
  /** A commit's share of the server's day, for the index (objects' own SQLite only: PostgreSQL keeps the server's row itself). */
  serverDay: (counts: ReadonlyMap<string, number>, batch: DayBatch) => void,
): Promise<RoomResources> {
  const store = await openStore(storage, hyperdrive, config, wake);
  const secret = config.resumeSecret ?? (await store.ensureSetting("resume_secret", randomSecret()));
  const rules = config.webhooks.rules;
  // The object's SQLite writes milestone events in the increment's transaction and wakes there (onFired);
  // PostgreSQL's statement writes them, so the room wakes when a commit crossed one of its key's milestones.
  const crossed = (counts: ReadonlyMap<string, number>, totals: Iterable<[string, number]>) => {
    for (const [key, total] of totals) {
      const n = counts.get(key) ?? 0;
      if (n > 0 && rules.some((r) => ruleMatches(r, key) && milestonesCrossed(r, total - n, total, 1).length > 0)) wake();
    }
  };
  const counted: CounterStore = store.nextDue
    ? store
    : {
        ...store,
        increment: async (counts) => {
          const totals = await store.increment(counts);
          crossed(counts, totals);
          return totals;
        },
        day: {
          ...store.day,
          commit: async (counts, batch) => {
            const committed = await store.day.commit(counts, batch);
            crossed(counts, [...committed].map(([k, c]) => [k, c.total] as [string, number]));
            return committed;
          },
        },
      };
  const outbox: Outbox = {
    ...store.outbox,
    fireOnline: async (ruleId, key, threshold, online, total) => {
      const fired = await store.outbox.fireOnline(ruleId, key, threshold, online, total);
      if (fired) wake();
      return fired;
    },
  };
  // An event written just before an eviction, whose alarm was not set, is picked up here.
  if (rules.length > 0 && store.nextDue?.() != null && (await storage.getAlarm()) === null) wake();
  return {
    store,
    signer: hmacSigner(secret),
    batcher: new WriteBatcher(counted, systemClock, log, {
      commitTimeoutMs: config.commitTimeoutMs,
      visitors: new VisitorIds(visitorMac, salt),
      committedDay: hyperdrive ? undefined : serverDay,
      // This key's hashes of past days (or, on PostgreSQL, everyone's: the same idempotent deletes).
      onNewDay: (day) => {
        void rollUpDays(store, config, log);
        // An idle key's object must not keep the day's hashes until its next visit: its alarm wakes it after midnight.
        void wakeAfter(storage, Date.parse(`${day}T00:00:00Z`) + 86_400_000 + 60_000).catch((err: unknown) => log.warn("roll-up alarm not set", { err }));
      },
    }),
    trigger: new OnlineTrigger(rules, outbox, log),
  };
}

/** Deletes the hashes and salts of the days before today, and daily rows past retention (core/visitors.ts). */
export async function rollUpDays(store: RoomStore, config: Config, log: Logger): Promise<void> {
  const today = utcDay(Date.now());
  try {
    await store.day.rollUp(today, daysBefore(today, config.limits.historyRetentionDays));
  } catch (err) {
    log.warn("roll-up failed", { err });
  }
}

/** Sets the object's alarm for `at` unless it is set sooner (the alarm also delivers webhooks: cloudflare-room.ts). */
async function wakeAfter(storage: CF.DurableObjectStorage, at: number): Promise<void> {
  const set = await storage.getAlarm();
  if (set === null || set > at) await storage.setAlarm(at);
}

/**
 * The object's alarm: delivers every due webhook event with core's worker
 * (the same slots, per-receiver caps and retries as a server's pool) and
 * says when to run next: the store's next due event, the earliest retry, or
 * now when an event was written meanwhile (`wokenMeanwhile`). Null: nothing pending.
 */
export async function deliverWebhooks(
  wh: Config["webhooks"],
  store: RoomStore,
  storage: CF.DurableObjectStorage,
  log: Logger,
  wokenMeanwhile: () => boolean,
): Promise<number | null> {
  if (wh.rules.length === 0) return null;
  const lockMs = wh.timeoutMs + 5000;
  // If this run dies mid-delivery, the object comes back when the claimed events' locks have expired.
  await storage.setAlarm(Date.now() + lockMs + 1000);
  const worker = new WebhookWorker(wh.rules, store.outbox, fetchPoster(wh), hmacHex, systemClock, log, { ...wh, retryMaxMs: 5 * 60_000, pollMs: 0, lockMs });
  const retryAt = await worker.deliverDue();
  // PostgreSQL's outbox is not this object's to query: an event written while this ran is due now.
  if (wokenMeanwhile()) return Date.now();
  return store.nextDue ? store.nextDue() : retryAt;
}

/**
 * Whether the object holds anything of ours: on its own SQLite, the schema's
 * counters table (a read of sqlite_master writes nothing); with Hyperdrive,
 * the mark that it migrated PostgreSQL. (Asking opens the object's storage,
 * so only an object that is being written to or was woken asks.)
 */
export function hasStorage(storage: CF.DurableObjectStorage, hyperdrive: CF.Hyperdrive | undefined): boolean {
  if (hyperdrive) return storage.kv.get("pg_migrated") !== undefined;
  return storage.sql.exec("select 1 from sqlite_master where type = 'table' and name = 'counters'").toArray().length > 0;
}
