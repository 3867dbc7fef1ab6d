import { sql, type SQL } from "drizzle-orm";
import type { CounterStore, DayStore, Outbox } from "../core/ports.ts";
import { isMilestoneRule, type WebhookRule } from "../core/webhook-rules.ts";
import { pgMaintenance, type StoreMaintenance } from "./maintenance.ts";
import { sqlOutbox } from "./outbox.ts";
import { dayCommitQuery, sqlDayStore } from "./day-store.ts";
import { rowsOf } from "./rows.ts";
import { counters, settings, visitsPerMinute } from "./schema.ts";

// One set of queries for PostgreSQL (postgres.js, on a server or through Hyperdrive). Each
// method is a single statement, so no transaction round trips are needed.

/** What a Drizzle PostgreSQL database offers (postgres.js directly, or through Hyperdrive). */
export interface SqlExecutor {
  execute(query: SQL): PromiseLike<unknown>;
}


/** Channel on which every committed total is announced, by the increment statement itself. */
export const TOTALS_CHANNEL = "headcount_totals";

// Milestone events, written in the same statement as the increment that
// crossed them: every milestone in (total - n, total] for each matching rule,
// at most 100 per key per commit. `dedupe` makes a milestone fire once.
// Only the rules the counting instance runs with (`ruleIds`) fire: instances
// sharing the database may run with other rules (a rolling deploy that
// changes WEBHOOK_RULES), and each one's table rows must not fire, or stop
// firing, anyone else's.
function milestones(ruleIds: readonly string[]): SQL {
  const ids = sql.join(ruleIds.map((id) => sql`${id}::text`), sql`, `);
  return sql`,
    fired as (
      insert into webhook_outbox (dedupe, rule_id, key, kind, value, total)
      select 'm:' || md5(r.id) || ':' || b.key || ':' || m.value, r.id, b.key, 'milestone', m.value, b.total
      from bumped b
      join batch on batch.key = b.key
      join webhook_rules r on r.id in (${ids})
        and (r.match_key = b.key or (r.match_prefix is not null and starts_with(b.key, r.match_prefix)))
      cross join lateral (
        select s.value from generate_series(((b.total - batch.n) / r.every + 1) * r.every, b.total, r.every) as s(value)
        where r.every is not null
        union all
        select u.value from unnest(r.milestones) as u(value) where u.value > b.total - batch.n and u.value <= b.total
        limit 100
      ) m
      on conflict (dedupe) do nothing
    )`;
}

/**
 * The increment's common table expressions: `batch(key, n)`, `bumped(key,
 * total)` (the new totals), the per-minute history and any milestone events.
 * `counts` may be empty (a batch of bots only: core/visitors.ts).
 */
export function incrementCtes(counts: ReadonlyMap<string, number>, milestoneRuleIds: readonly string[] = []): SQL {
  // Sorted keys lock rows in one order, so concurrent instances cannot deadlock.
  const keys = [...counts.keys()].sort();
  const values =
    keys.length > 0
      ? sql`values ${sql.join(keys.map((key) => sql`(${key}::text, ${counts.get(key)}::bigint)`), sql`, `)}`
      : sql`select null::text, null::bigint where false`;
  return sql`
    with batch(key, n) as (${values}),
    bumped as (
      insert into ${counters} as c (key, total, updated_at)
      select key, n, now() from batch
      on conflict (key) do update set total = c.total + excluded.total, updated_at = excluded.updated_at
      returning c.key, c.total
    ),
    history as (
      insert into ${visitsPerMinute} as h (key, minute, visits)
      select key, date_trunc('minute', now()), n from batch
      on conflict (key, minute) do update set visits = h.visits + excluded.visits
    )${milestoneRuleIds.length > 0 ? milestones(milestoneRuleIds) : sql``}`;
}

export function incrementQuery(counts: ReadonlyMap<string, number>, notify = false, milestoneRuleIds: readonly string[] = []): SQL {
  return sql`${incrementCtes(counts, milestoneRuleIds)}
    select key, total::text as total${notify ? announce : sql``} from bumped`;
}

// pg_notify in the statement is transactional: sent on commit, never for a
// rolled-back increment, and with no extra round trip.
const announce = sql.raw(`, pg_notify('${TOTALS_CHANNEL}', json_build_object('k', key, 't', total)::text)`);

export interface MinuteVisits {
  /** Start of the minute, epoch ms. */
  minute: number;
  visits: number;
}

export interface SqlStore extends CounterStore, StoreMaintenance {
  /** Visitors, bots and visits per day (issue 13). */
  readonly day: DayStore;
  /** The webhook outbox on the same database. */
  outbox: Outbox;
  /**
   * Adds this instance's milestone rules to the table the increment statement
   * joins. Never removes one: other instances on the database may use it.
   */
  registerWebhookRules(rules: readonly WebhookRule[]): Promise<void>;
  /** The milestone rules whose events this store's increments write (this instance's, registered). */
  fireMilestones(rules: readonly WebhookRule[]): void;
  /** Visits per minute for `key` over the last `minutes`, oldest first. */
  history(key: string, minutes: number): Promise<MinuteVisits[]>;
  /** The `limit` keys with the highest totals, highest first. */
  top(limit: number): Promise<Array<{ key: string; total: number }>>;
  /** Sum of totals and number of keys over every key starting with `prefix` ("" is every key). */
  sumByPrefix(prefix: string): Promise<{ total: number; keys: number }>;
  /** Returns the stored value, writing `candidate` first if there is none. */
  ensureSetting(name: string, candidate: string): Promise<string>;
  /** Keys in key order with totals, for the admin API. */
  list(limit: number, offset: number): Promise<Array<{ key: string; total: number; updatedAt: string }>>;
  /** Sets a total outright (admin); announced with a reset flag so other instances accept a lower value. */
  setTotal(key: string, total: number): Promise<void>;
}

export interface SqlStoreOptions {
  /** Announce each committed total on TOTALS_CHANNEL (multi-instance PostgreSQL). */
  notify?: boolean;
  /** Ids of the milestone rules whose events the increment statement writes. */
  milestoneRuleIds?: readonly string[];
}

export function createSqlStore(db: SqlExecutor, close: () => Promise<void>, opts: SqlStoreOptions = {}): SqlStore {
  return {
    outbox: sqlOutbox(db),
    ...pgMaintenance(db, TOTALS_CHANNEL, () => opts.notify),

    day: sqlDayStore(db, (counts, batch) =>
      dayCommitQuery(counts, batch, (c) => incrementCtes(c, opts.milestoneRuleIds), opts.notify ?? false, TOTALS_CHANNEL),
    ),

    fireMilestones(rules) {
      opts = { ...opts, milestoneRuleIds: rules.filter(isMilestoneRule).map((r) => r.id) };
    },

    async registerWebhookRules(rules) {
      for (const r of rules.filter(isMilestoneRule)) {
        const list = r.milestones ? sql`array[${sql.join(r.milestones.map((m) => sql`${m}::bigint`), sql`, `)}]::bigint[]` : sql`null`;
        // The id is the rule's canonical definition, so an existing row is this same rule.
        await db.execute(sql`
          insert into webhook_rules (id, match_key, match_prefix, every, milestones)
          values (${r.id}, ${r.key ?? null}, ${r.prefix ?? null}, ${r.every ?? null}::bigint, ${list})
          on conflict (id) do nothing`);
      }
    },

    async increment(counts) {
      const out = new Map<string, number>();
      if (counts.size === 0) return out;
      for (const row of rowsOf(await db.execute(incrementQuery(counts, opts.notify, opts.milestoneRuleIds)))) {
        out.set(String(row.key), Number(row.total));
      }
      return out;
    },

    async totals(keys) {
      const out = new Map<string, number>();
      if (keys.length === 0) return out;
      const list = sql.join(keys.map((k) => sql`${k}::text`), sql`, `);
      const rows = rowsOf(await db.execute(sql`select key, total::text as total from ${counters} where key in (${list})`));
      for (const row of rows) out.set(String(row.key), Number(row.total));
      return out;
    },

    async history(key, minutes) {
      const rows = rowsOf(
        await db.execute(sql`
          select (extract(epoch from minute) * 1000)::bigint::text as minute, visits::text as visits
          from ${visitsPerMinute}
          where key = ${key} and minute >= date_trunc('minute', now()) - make_interval(mins => ${minutes}::int)
          order by minute`),
      );
      return rows.map((r) => ({ minute: Number(r.minute), visits: Number(r.visits) }));
    },

    async top(limit) {
      const rows = rowsOf(
        // Ordered by the column, not the text alias of the same name (which would put 9 above 10).
        await db.execute(sql`select key, total::text as total from ${counters} order by ${counters.total} desc, key limit ${limit}::int`),
      );
      return rows.map((r) => ({ key: String(r.key), total: Number(r.total) }));
    },

    async sumByPrefix(prefix) {
      // starts_with, not LIKE: a prefix may contain % and _.
      const rows = rowsOf(
        await db.execute(sql`
          select coalesce(sum(total), 0)::text as total, count(*)::text as keys
          from ${counters} where starts_with(key, ${prefix}::text)`),
      );
      return { total: Number(rows[0]?.total ?? 0), keys: Number(rows[0]?.keys ?? 0) };
    },

    async list(limit, offset) {
      const rows = rowsOf(
        await db.execute(sql`
          select key, total::text as total, to_char(updated_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as updated_at
          from ${counters} order by key limit ${limit}::int offset ${offset}::int`),
      );
      return rows.map((r) => ({ key: String(r.key), total: Number(r.total), updatedAt: String(r.updated_at) }));
    },

    async setTotal(key, total) {
      const announceReset = opts.notify
        ? sql.raw(`, pg_notify('${TOTALS_CHANNEL}', json_build_object('k', key, 't', total, 'r', true)::text)`)
        : sql``;
      await db.execute(sql`
        with assigned as (
          insert into ${counters} as c (key, total, updated_at) values (${key}::text, ${total}::bigint, now())
          on conflict (key) do update set total = excluded.total, updated_at = excluded.updated_at
          returning c.key, c.total
        )
        select key${announceReset} from assigned`);
    },

    async ping() {
      await db.execute(sql`select 1`);
    },

    async ensureSetting(name, candidate) {
      const rows = rowsOf(
        await db.execute(sql`
          with ins as (
            insert into ${settings} (name, value) values (${name}, ${candidate})
            on conflict (name) do nothing returning value
          )
          select value from ins union all select value from ${settings} where name = ${name} limit 1`),
      );
      const value = rows[0]?.value;
      if (typeof value !== "string") throw new Error(`setting ${name} could not be read`);
      return value;
    },

    close,
  };
}
