import { sql } from "drizzle-orm/sql/sql";
import { isMilestoneRule, milestonesCrossed, ruleMatches, type WebhookRule } from "../../core/webhook-rules.ts";
import type { SqlStore } from "../store.ts";
import { prepare, type SqliteExecutor } from "./executor.ts";
import { sqliteMaintenance } from "./maintenance.ts";
import { bare } from "./names.ts";
import { sqliteDayStore, type SqliteDayStore } from "./day-store.ts";
import { nextDue, sqliteOutbox } from "./outbox.ts";
import { counters as c, settings, visitsPerMinute as h, webhookOutbox as o } from "./schema.ts";

// The one set of SQLite queries (DESIGN.md §3), for a file in DATA_DIR
// (file.ts) and a Durable Object's storage (durable.ts), with the same
// contract and results as PostgreSQL's store (../store.ts). Statements are
// synchronous, so an increment is one transaction per batch: per key one
// upsert returning the new total, the per-minute history row and any
// milestone events, all committed together and made durable before the
// totals are returned.

const MINUTE_MS = 60_000;
/** Milestone events per key per commit, as on PostgreSQL. */
const MAX_EVENTS_PER_COMMIT = 100;
/** Keys per `in (…)` list, well under SQLite's bound-parameter limit. */
const IN_LIST_MAX = 500;

// The statements run per key of every increment, rendered once (executor.ts).
const p = sql.placeholder;
const ADD_TO_TOTAL = prepare(sql`
  insert into ${c} (${bare(c.key)}, ${bare(c.total)}, ${bare(c.updatedAt)}) values (${p("key")}, ${p("n")}, ${p("now")})
  on conflict (${bare(c.key)}) do update set ${bare(c.total)} = ${c.total} + excluded.${bare(c.total)},
    ${bare(c.updatedAt)} = excluded.${bare(c.updatedAt)}
  returning ${c.total}`);
const ADD_TO_MINUTE = prepare(sql`
  insert into ${h} (${bare(h.key)}, ${bare(h.minute)}, ${bare(h.visits)}) values (${p("key")}, ${p("minute")}, ${p("n")})
  on conflict (${bare(h.key)}, ${bare(h.minute)}) do update set ${bare(h.visits)} = ${h.visits} + excluded.${bare(h.visits)}`);
const WRITE_MILESTONE = prepare(sql`
  insert into ${o} (${bare(o.id)}, ${bare(o.dedupe)}, ${bare(o.ruleId)}, ${bare(o.key)}, ${bare(o.kind)}, ${bare(o.value)},
    ${bare(o.total)}, ${bare(o.createdAt)}, ${bare(o.dueAt)})
  values (${p("id")}, ${p("dedupe")}, ${p("rule")}, ${p("key")}, 'milestone', ${p("value")}, ${p("total")}, ${p("now")}, ${p("now")})
  on conflict (${bare(o.dedupe)}) do nothing
  returning ${o.id}`);

/** Keys summed per chunk of a site total: a few ms of work between yields to the event loop. */
const SUM_CHUNK = 5000;
const chunkOf = (bounded: boolean) =>
  prepare(sql`
    select coalesce(sum(${sql.raw("total")}), 0) as total, count(*) as keys, max(${sql.raw("key")}) as last from (
      select ${c.key}, ${c.total} from ${c} where ${c.key} >= ${p("lo")}${bounded ? sql` and ${c.key} < ${p("hi")}` : sql``}
      order by ${c.key} limit ${p("n")})`);
const SUM_CHUNK_BOUNDED = chunkOf(true);
const SUM_CHUNK_OPEN = chunkOf(false);

export interface SqliteStore extends SqlStore {
  readonly day: SqliteDayStore;
  /** When the next pending webhook event can be claimed (epoch ms), or null when none is pending (a Durable Object's alarm). */
  nextDue(): number | null;
}

export interface SqliteStoreOptions {
  /** Webhook rules whose milestone events the increment writes (fireMilestones replaces them). */
  rules?: readonly WebhookRule[];
  /** Called inside a commit that wrote webhook events, before it is made durable (a Durable Object sets its alarm). */
  onFired?: () => void;
  /** Throws when the database cannot answer (and, where the driver can tell, cannot write). */
  ping(): void;
  close(): Promise<void>;
}

/**
 * The smallest string above every string that starts with `prefix`, in
 * SQLite's binary (UTF-8, so code point) order; null when there is none.
 */
export function prefixUpperBound(prefix: string): string | null {
  const points = [...prefix].map((ch) => ch.codePointAt(0)!);
  while (points.length > 0 && points.at(-1) === 0x10ffff) points.pop();
  if (points.length === 0) return null;
  const last = points.pop()! + 1;
  points.push(last === 0xd800 ? 0xe000 : last);
  return String.fromCodePoint(...points);
}

export function createSqliteStore(db: SqliteExecutor, opts: SqliteStoreOptions): SqliteStore {
  let milestoneRules = (opts.rules ?? []).filter(isMilestoneRule);

  /** Writes the milestone events `key` crossed going from `before` to `after`; returns how many were new. */
  function writeMilestones(key: string, before: number, after: number, now: number): number {
    let fired = 0;
    for (const rule of milestoneRules) {
      if (!ruleMatches(rule, key)) continue;
      for (const value of milestonesCrossed(rule, before, after, MAX_EVENTS_PER_COMMIT)) {
        const rows = db.all(WRITE_MILESTONE, {
          id: crypto.randomUUID(),
          dedupe: `m:${rule.id}:${key}:${value}`,
          rule: rule.id,
          key,
          value,
          total: after,
          now,
        });
        fired += rows.length;
      }
    }
    return fired;
  }

  /** Adds visits in one transaction (with `inside`'s writes, the day's), durable before it resolves. */
  const day = sqliteDayStore(db, async (counts, inside) => {
    const out = new Map<string, number>();
    const now = Date.now();
    const minute = now - (now % MINUTE_MS);
    const fired = db.transaction(() => {
      let events = 0;
      for (const key of [...counts.keys()].sort()) {
        const n = counts.get(key)!;
        const row = db.all(ADD_TO_TOTAL, { key, n, now })[0];
        db.run(ADD_TO_MINUTE, { key, minute, n });
        const total = Number(row?.total);
        out.set(key, total);
        if (milestoneRules.length > 0) events += writeMilestones(key, total - n, total, now);
      }
      inside?.(out);
      return events;
    });
    // A Durable Object's delivery alarm is set before the commit is made durable, so both persist or neither.
    if (fired > 0) opts.onFired?.();
    await db.durable();
    return out;
  });

  return {
    outbox: sqliteOutbox(db, { onFired: opts.onFired }),
    ...sqliteMaintenance(db),

    nextDue: () => nextDue(db),

    // Rules are evaluated in code (writeMilestones), so there is no table to fill.
    async registerWebhookRules() {},

    fireMilestones(rules) {
      milestoneRules = rules.filter(isMilestoneRule);
    },

    day,

    async increment(counts) {
      if (counts.size === 0) return new Map<string, number>();
      return day.increment(counts);
    },

    async totals(keys) {
      const out = new Map<string, number>();
      for (let i = 0; i < keys.length; i += IN_LIST_MAX) {
        const list = sql.join(keys.slice(i, i + IN_LIST_MAX).map((k) => sql`${k}`), sql`, `);
        for (const r of db.all(sql`select ${c.key}, ${c.total} from ${c} where ${c.key} in (${list})`)) {
          out.set(String(r.key), Number(r.total));
        }
      }
      return out;
    },

    async history(key, minutes) {
      const now = Date.now();
      const since = now - (now % MINUTE_MS) - minutes * MINUTE_MS;
      const rows = db.all(sql`
        select ${h.minute}, ${h.visits} from ${h} where ${h.key} = ${key} and ${h.minute} >= ${since} order by ${h.minute}`);
      return rows.map((r) => ({ minute: Number(r.minute), visits: Number(r.visits) }));
    },

    async top(limit) {
      const rows = db.all(sql`select ${c.key}, ${c.total} from ${c} order by ${c.total} desc, ${c.key} limit ${limit}`);
      return rows.map((r) => ({ key: String(r.key), total: Number(r.total) }));
    },

    async sumByPrefix(prefix) {
      // A range on the primary key, not LIKE: a prefix may contain % and _. Statements here are
      // synchronous, so a sum over many keys goes in chunks with the event loop free in between
      // (a million keys would otherwise hold every socket still for a quarter of a second).
      const upper = prefixUpperBound(prefix);
      let total = 0;
      let keys = 0;
      let lo = prefix;
      for (;;) {
        const r = upper === null ? db.all(SUM_CHUNK_OPEN, { lo, n: SUM_CHUNK })[0] : db.all(SUM_CHUNK_BOUNDED, { lo, hi: upper, n: SUM_CHUNK })[0];
        const n = Number(r?.keys ?? 0);
        total += Number(r?.total ?? 0);
        keys += n;
        if (n < SUM_CHUNK) return { total, keys };
        // The next key after the last one summed: keys hold no control characters, and "\u0000" sorts first anyway.
        lo = `${String(r!.last)}\u0000`;
        await new Promise((resolve) => setTimeout(resolve, 0));
      }
    },

    async list(limit, offset) {
      const rows = db.all(sql`
        select ${c.key}, ${c.total}, ${c.updatedAt} from ${c} order by ${c.key} limit ${limit} offset ${offset}`);
      return rows.map((r) => ({ key: String(r.key), total: Number(r.total), updatedAt: new Date(Number(r.updated_at)).toISOString() }));
    },

    async setTotal(key, total) {
      db.run(sql`
        insert into ${c} (${bare(c.key)}, ${bare(c.total)}, ${bare(c.updatedAt)}) values (${key}, ${total}, ${Date.now()})
        on conflict (${bare(c.key)}) do update set ${bare(c.total)} = excluded.${bare(c.total)}, ${bare(c.updatedAt)} = excluded.${bare(c.updatedAt)}`);
      await db.durable();
    },

    async ensureSetting(name, candidate) {
      const value = db.transaction(() => {
        db.run(sql`insert into ${settings} (${bare(settings.name)}, ${bare(settings.value)}) values (${name}, ${candidate})
          on conflict (${bare(settings.name)}) do nothing`);
        return db.all(sql`select ${settings.value} from ${settings} where ${settings.name} = ${name}`)[0]?.value;
      });
      if (typeof value !== "string") throw new Error(`setting ${name} could not be read`);
      await db.durable();
      return value;
    },

    async ping() {
      opts.ping();
    },

    close: opts.close,
  };
}
