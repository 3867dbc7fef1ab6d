import { sql } from "drizzle-orm";
import { drizzle } from "drizzle-orm/durable-sqlite";
import { migrate } from "drizzle-orm/durable-sqlite/migrator";
import type { DurableObjectStorage } from "@cloudflare/workers-types/index.ts";
import migrations from "../../drizzle-do/migrations.js";
import { counters, settings, visitsPerMinute, webhookOutbox, webhookState } from "./schema-do.ts";
import type { CounterStore, Outbox } from "../core/ports.ts";
import { outboxEventOf } from "./rows.ts";
import { isMilestoneRule, milestonesCrossed, ruleMatches, type WebhookRule } from "../core/webhook-rules.ts";
import type { MinuteVisits } from "./store.ts";

// The store on a Durable Object's own SQLite (Workers, DESIGN.md §3). Same
// contract as store.ts: one atomic upsert per key that returns the new total,
// the per-minute history row in the same transaction. SQLite statements run
// synchronously inside the object; `storage.sync()` then waits until the
// write is durable, so nothing is acknowledged before it is.
// https://developers.cloudflare.com/durable-objects/api/sqlite-storage-api/

const MINUTE_MS = 60_000;

type Row = Record<string, unknown>;

/** What one Durable Object needs of its store (a subset of store.ts's SqlStore: one object holds one key). */
export interface DurableSqliteStore extends CounterStore {
  /** Visits per minute for `key` over the last `minutes`, oldest first. */
  history(key: string, minutes: number): Promise<MinuteVisits[]>;
  /** Returns the stored value, writing `candidate` first if there is none. */
  ensureSetting(name: string, candidate: string): Promise<string>;
  /** Sets a total outright (admin API). */
  setTotal(key: string, total: number): Promise<void>;
  /** The webhook outbox in this object's SQLite. */
  outbox: Outbox;
  /** When the next pending event can be claimed (epoch ms), or null when none is pending. */
  nextDue(): number | null;
}

export interface DurableSqliteOptions {
  /** Webhook rules: milestone events are written in the increment's transaction. */
  rules?: readonly WebhookRule[];
  /** Called inside the increment, before it is made durable, when it wrote outbox events. */
  onFired?: () => void;
}

/** Milestone events per key per commit, as on PostgreSQL (src/db/store.ts). */
const MAX_EVENTS_PER_COMMIT = 100;

function iso(ms: unknown): string {
  return new Date(Number(ms)).toISOString();
}

/** Migrates (drizzle-do/) and returns the store. Call inside blockConcurrencyWhile. */
export async function openDurableSqlite(storage: DurableObjectStorage, opts: DurableSqliteOptions = {}): Promise<DurableSqliteStore> {
  const db = drizzle(storage);
  await migrate(db, migrations);
  const milestoneRules = (opts.rules ?? []).filter(isMilestoneRule);

  /** Writes the milestone events crossed by `key` going from `before` to `after`; returns how many were new. */
  function fireMilestones(key: string, before: number, after: number, now: number): number {
    let fired = 0;
    for (const rule of milestoneRules) {
      if (!ruleMatches(rule, key)) continue;
      for (const value of milestonesCrossed(rule, before, after, MAX_EVENTS_PER_COMMIT)) {
        const rows = db.all<Row>(sql`
          insert into ${webhookOutbox} (id, dedupe, rule_id, key, kind, value, total, created_at, due_at)
          values (${crypto.randomUUID()}, ${`m:${rule.id}:${key}:${value}`}, ${rule.id}, ${key}, 'milestone', ${value}, ${after}, ${now}, ${now})
          on conflict (dedupe) do nothing
          returning id`);
        fired += rows.length;
      }
    }
    return fired;
  }

  const outbox: Outbox = {
    async claim(limit, lockMs, ruleIds) {
      if (ruleIds.length === 0 || limit <= 0) return [];
      const now = Date.now();
      const rules = sql.join(ruleIds.map((id) => sql`${id}`), sql`, `);
      const rows = db.all<Row>(sql`
        update ${webhookOutbox} set locked_until = ${now + lockMs}, attempts = attempts + 1
        where id in (
          select id from ${webhookOutbox}
          where status = 'pending' and due_at <= ${now} and (locked_until is null or locked_until < ${now}) and rule_id in (${rules})
          order by due_at limit ${limit}
        )
        returning id, rule_id, key, kind, value, total, online, created_at, attempts`);
      await storage.sync();
      return rows.map((r) => outboxEventOf(r, iso(r.created_at)));
    },

    async delivered(id) {
      db.run(sql`
        update ${webhookOutbox} set status = 'delivered', delivered_at = ${Date.now()}, locked_until = null, last_error = null
        where id = ${id}`);
      await storage.sync();
    },

    async failed(id, error, retryInMs) {
      db.run(sql`
        update ${webhookOutbox} set last_error = ${error}, locked_until = null,
          status = ${retryInMs === null ? "dead" : "pending"}, due_at = ${Date.now() + (retryInMs ?? 0)}
        where id = ${id}`);
      await storage.sync();
    },

    async fireOnline(ruleId, key, threshold, online, total) {
      const now = Date.now();
      let fired = false;
      storage.transactionSync(() => {
        const st = db.all<Row>(sql`
          insert into ${webhookState} (rule_id, key, armed, generation) values (${ruleId}, ${key}, 0, 1)
          on conflict (rule_id, key) do update set armed = 0, generation = generation + 1 where armed = 1
          returning generation`);
        if (st.length === 0) return;
        const rows = db.all<Row>(sql`
          insert into ${webhookOutbox} (id, dedupe, rule_id, key, kind, value, total, online, created_at, due_at)
          values (${crypto.randomUUID()}, ${`o:${ruleId}:${key}:${Number(st[0]!.generation)}`}, ${ruleId}, ${key}, 'online',
            ${threshold}, ${total}, ${online}, ${now}, ${now})
          on conflict (dedupe) do nothing
          returning id`);
        fired = rows.length > 0;
        if (fired) opts.onFired?.();
      });
      await storage.sync();
      return fired;
    },

    async rearm(ruleId, key) {
      db.run(sql`update ${webhookState} set armed = 1 where rule_id = ${ruleId} and key = ${key} and armed = 0`);
      await storage.sync();
    },

    async summary() {
      const r = db.all<Row>(sql`
        select sum(status = 'pending') as pending, sum(status = 'delivered') as delivered, sum(status = 'dead') as dead
        from ${webhookOutbox}`)[0] ?? {};
      return { pending: Number(r.pending ?? 0), delivered: Number(r.delivered ?? 0), dead: Number(r.dead ?? 0) };
    },

    async recentDead(limit) {
      const rows = db.all<Row>(sql`
        select id, key, attempts, last_error from ${webhookOutbox} where status = 'dead' order by due_at desc limit ${limit}`);
      return rows.map((r) => ({
        id: String(r.id),
        key: String(r.key),
        attempts: Number(r.attempts),
        lastError: r.last_error === null || r.last_error === undefined ? null : String(r.last_error),
      }));
    },
  };

  return {
    outbox,

    nextDue() {
      // A claimed event is not due again before its lock expires.
      const r = db.all<Row>(sql`select min(max(due_at, coalesce(locked_until, 0))) as due from ${webhookOutbox} where status = 'pending'`)[0];
      return r?.due === null || r?.due === undefined ? null : Number(r.due);
    },

    async setTotal(key, total) {
      db.run(sql`
        insert into ${counters} (key, total, updated_at) values (${key}, ${total}, ${Date.now()})
        on conflict (key) do update set total = excluded.total, updated_at = excluded.updated_at`);
      await storage.sync();
    },

    async increment(counts) {
      const out = new Map<string, number>();
      if (counts.size === 0) return out;
      const now = Date.now();
      const minute = now - (now % MINUTE_MS);
      let fired = 0;
      storage.transactionSync(() => {
        for (const key of [...counts.keys()].sort()) {
          const n = counts.get(key)!;
          const rows = db.all<Row>(sql`
            insert into ${counters} (key, total, updated_at) values (${key}, ${n}, ${now})
            on conflict (key) do update set total = total + excluded.total, updated_at = excluded.updated_at
            returning total`);
          db.run(sql`
            insert into ${visitsPerMinute} (key, minute, visits) values (${key}, ${minute}, ${n})
            on conflict (key, minute) do update set visits = visits + excluded.visits`);
          const total = Number(rows[0]?.total);
          out.set(key, total);
          if (milestoneRules.length > 0) fired += fireMilestones(key, total - n, total, now);
        }
      });
      // The alarm that delivers is set before the commit is made durable, so both persist or neither.
      if (fired > 0) opts.onFired?.();
      await storage.sync();
      return out;
    },

    async totals(keys) {
      const out = new Map<string, number>();
      for (const key of keys) {
        const rows = db.all<Row>(sql`select total from ${counters} where key = ${key}`);
        if (rows[0]) out.set(key, Number(rows[0].total));
      }
      return out;
    },

    async history(key, minutes) {
      const now = Date.now();
      const since = now - (now % MINUTE_MS) - minutes * MINUTE_MS;
      const rows = db.all<Row>(
        sql`select minute, visits from ${visitsPerMinute} where key = ${key} and minute >= ${since} order by minute`,
      );
      return rows.map((r) => ({ minute: Number(r.minute), visits: Number(r.visits) }));
    },

    async ping() {
      db.all(sql`select 1`);
    },

    async ensureSetting(name, candidate) {
      db.run(sql`insert into ${settings} (name, value) values (${name}, ${candidate}) on conflict (name) do nothing`);
      const value = db.all<Row>(sql`select value from ${settings} where name = ${name}`)[0]?.value;
      if (typeof value !== "string") throw new Error(`setting ${name} could not be read`);
      await storage.sync();
      return value;
    },

    // The object's storage lives as long as the object; nothing to close.
    async close() {},
  };
}
