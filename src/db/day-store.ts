import { sql, type SQL } from "drizzle-orm";
import type { DayStore, KeyCommit } from "../core/ports.ts";
import { SERVER_KEY, type DayBatch } from "../core/visitors.ts";
import { rowsOf } from "./rows.ts";
import { counters, daily, visitorHashes, visitorSalts } from "./schema.ts";
import type { SqlExecutor } from "./store.ts";

// Visitors per day on PostgreSQL (issue 13, core/visitors.ts). A commit is
// still one statement: the increment of store.ts (totals, per-minute history,
// milestones, NOTIFY) with the batch's hashes inserted beside it, ON CONFLICT
// DO NOTHING, and the number of fresh ones added to each key's daily row.

/** Hashes deleted per statement by the roll-up: short locks, a few ms each. */
const ROLLUP_BATCH = 10_000;

/** The visit part of the statement: `incrementCtes` of store.ts, given the people-only counts. */
export type IncrementCtes = (counts: ReadonlyMap<string, number>) => SQL;

function dailyRows(counts: ReadonlyMap<string, number>, batch: DayBatch): SQL {
  const keys = new Set([...counts.keys(), ...batch.hashes.keys(), ...batch.bots.keys()]);
  let visits = 0;
  let bots = 0;
  const rows: SQL[] = [];
  for (const key of [...keys].sort()) {
    const n = counts.get(key) ?? 0;
    const b = batch.bots.get(key) ?? 0;
    visits += n;
    bots += b;
    rows.push(sql`(${key}::text, ${n}::bigint, ${b}::bigint)`);
  }
  rows.unshift(sql`(${SERVER_KEY}::text, ${visits}::bigint, ${bots}::bigint)`);
  return sql.join(rows, sql`, `);
}

function hashesJson(batch: DayBatch): string {
  const out: Array<{ k: string; h: string }> = [];
  for (const [k, list] of batch.hashes) for (const h of list) out.push({ k, h });
  for (const h of batch.server) out.push({ k: SERVER_KEY, h });
  return JSON.stringify(out);
}

export function dayCommitQuery(counts: ReadonlyMap<string, number>, batch: DayBatch, ctes: IncrementCtes, notify: boolean, channel: string): SQL {
  // Every key of the day is announced with its visitors, so other instances' rooms show them too.
  const announce = notify
    ? sql.raw(`, case when d.key <> '' then pg_notify('${channel}', json_build_object('k', d.key, 't', coalesce(b.total, c.total, 0), 'd', d.day, 'v', d.visitors, 'b', d.bots)::text) end`)
    : sql``;
  return sql`
    ${ctes(counts)},
    seen as (
      -- Sorted, so two instances inserting the same hashes take their index locks in one order.
      select x.k, x.h from json_to_recordset(${hashesJson(batch)}::json) as x(k text, h text) order by x.k, x.h
    ),
    fresh as (
      insert into ${visitorHashes} (key, day, hash) select k, ${batch.day}::text, h from seen
      on conflict do nothing
      returning key
    ),
    fresh_n as (select key, count(*) as n from fresh group by key),
    day_rows(key, visits, bots) as (values ${dailyRows(counts, batch)}),
    days as (
      insert into ${daily} as d (key, day, visits, visitors, bots)
      select r.key, ${batch.day}::text, r.visits, coalesce(f.n, 0), r.bots from day_rows r left join fresh_n f on f.key = r.key
      -- Bots alone make no row for a key nobody has visited (they count toward the server's): a crawler cannot
      -- create rows, only people's visits can (and those create a counter too).
      where r.key = '' or r.visits > 0 or f.n is not null or exists (select 1 from ${counters} k where k.key = r.key)
      on conflict (key, day) do update set visits = d.visits + excluded.visits, visitors = d.visitors + excluded.visitors,
        bots = d.bots + excluded.bots
      returning d.key, d.day, d.visitors, d.bots
    )
    select r.key, coalesce(b.total, c.total, 0)::text as total, coalesce(d.visitors, 0)::text as visitors,
      coalesce(d.bots, 0)::text as bots${announce}
    from day_rows r left join days d on d.key = r.key left join bumped b on b.key = r.key left join ${counters} c on c.key = r.key`;
}

export function sqlDayStore(db: SqlExecutor, commitQuery: (counts: ReadonlyMap<string, number>, batch: DayBatch) => SQL): DayStore {
  return {
    async commit(counts, batch) {
      const out = new Map<string, KeyCommit>();
      for (const r of rowsOf(await db.execute(commitQuery(counts, batch)))) {
        out.set(String(r.key), { total: Number(r.total), visitors: Number(r.visitors), bots: Number(r.bots) });
      }
      return out;
    },

    async today(keys, day) {
      const out = new Map<string, { visits: number; visitors: number; bots: number }>();
      if (keys.length === 0) return out;
      const list = sql.join(keys.map((k) => sql`${k}::text`), sql`, `);
      const rows = rowsOf(
        await db.execute(sql`
          select key, visits::text as visits, visitors::text as visitors, bots::text as bots
          from ${daily} where day = ${day}::text and key in (${list})`),
      );
      for (const r of rows) out.set(String(r.key), { visits: Number(r.visits), visitors: Number(r.visitors), bots: Number(r.bots) });
      return out;
    },

    async salt(day, candidate) {
      // Every instance agrees: the first insert wins, everyone reads it back.
      await db.execute(sql`insert into ${visitorSalts} (day, salt) values (${day}::text, ${candidate}::text) on conflict (day) do nothing`);
      const rows = rowsOf(await db.execute(sql`select salt from ${visitorSalts} where day = ${day}::text`));
      const salt = rows[0]?.salt;
      if (typeof salt !== "string") throw new Error("the day's salt could not be read");
      return salt;
    },

    async rollUp(today, keepFrom) {
      let deleted = 0;
      for (;;) {
        const rows = rowsOf(
          await db.execute(sql`
            with gone as (
              delete from ${visitorHashes} where ctid = any(array(
                select ctid from ${visitorHashes} where day < ${today}::text limit ${ROLLUP_BATCH}::int))
              returning 1
            )
            select count(*)::int as n from gone`),
        );
        const n = Number(rows[0]?.n ?? 0);
        deleted += n;
        if (n < ROLLUP_BATCH) break;
      }
      await db.execute(sql`delete from ${visitorSalts} where day < ${today}::text`);
      await db.execute(sql`delete from ${daily} where day < ${keepFrom}::text`);
      return deleted;
    },

    async daily(key, fromDay) {
      const rows = rowsOf(
        await db.execute(sql`
          select day, visits::text as visits, visitors::text as visitors, bots::text as bots
          from ${daily} where key = ${key}::text and day >= ${fromDay}::text order by day`),
      );
      return rows.map((r) => ({ day: String(r.day), visits: Number(r.visits), visitors: Number(r.visitors), bots: Number(r.bots) }));
    },

    async hashCount(day) {
      const rows = rowsOf(await db.execute(sql`select count(*)::text as n from ${visitorHashes} where day = ${day}::text`));
      return Number(rows[0]?.n ?? 0);
    },
  };
}
