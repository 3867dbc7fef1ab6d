import { sql } from "drizzle-orm/sql/sql";
import type { DayStore, KeyCommit } from "../../core/ports.ts";
import { SERVER_KEY } from "../../core/visitors.ts";
import { prepare, type SqliteExecutor } from "./executor.ts";
import { bare } from "./names.ts";
import { counters as c, daily as d, visitorHashes as v, visitorSalts as s } from "./schema.ts";

// Visitors per day on SQLite (a file in DATA_DIR, a Durable Object's storage;
// issue 13, core/visitors.ts), the same contract as PostgreSQL's
// (../day-store.ts): the batch's hashes are inserted in the transaction that
// adds its visits, and each key's daily row grows by the fresh ones.

/**
 * Runs the visits of `counts` in one transaction, calling `inside` within it
 * with the new totals (for the day's writes), and resolves once it is durable.
 */
export type Increment = (counts: ReadonlyMap<string, number>, inside?: (totals: Map<string, number>) => void) => Promise<Map<string, number>>;

export interface SqliteDayStore extends DayStore {
  /** Visits only (CounterStore.increment). */
  increment: Increment;
}

/** Hashes deleted per statement by the roll-up: the event loop (or the object) is free in between. */
const ROLLUP_BATCH = 5000;

const p = sql.placeholder;
const ADD_HASH = prepare(sql`
  insert into ${v} (${bare(v.key)}, ${bare(v.day)}, ${bare(v.hash)}) values (${p("key")}, ${p("day")}, ${p("hash")})
  on conflict do nothing returning 1 as fresh`);
const ADD_DAY = prepare(sql`
  insert into ${d} (${bare(d.key)}, ${bare(d.day)}, ${bare(d.visits)}, ${bare(d.visitors)}, ${bare(d.bots)})
  values (${p("key")}, ${p("day")}, ${p("visits")}, ${p("visitors")}, ${p("bots")})
  on conflict (${bare(d.key)}, ${bare(d.day)}) do update set ${bare(d.visits)} = ${d.visits} + excluded.${bare(d.visits)},
    ${bare(d.visitors)} = ${d.visitors} + excluded.${bare(d.visitors)}, ${bare(d.bots)} = ${d.bots} + excluded.${bare(d.bots)}
  returning ${d.visitors}, ${d.bots}`);
const TOTAL = prepare(sql`select ${c.total} from ${c} where ${c.key} = ${p("key")}`);
// The table has no rowid (WITHOUT ROWID: the primary key is the table), so rows are picked by their key.
const ROLL_HASHES = prepare(sql`
  delete from ${v} where (${bare(v.key)}, ${bare(v.day)}, ${bare(v.hash)}) in (
    select ${v.key}, ${v.day}, ${v.hash} from ${v} where ${v.day} < ${p("today")} limit ${p("n")})
  returning 1`);

export function sqliteDayStore(db: SqliteExecutor, increment: Increment): SqliteDayStore {
  const fresh = (key: string, day: string, hashes: readonly string[]) => {
    let n = 0;
    for (const hash of hashes) n += db.all(ADD_HASH, { key, day, hash }).length;
    return n;
  };
  let secureDelete = false;
  return {
    increment,

    async commit(counts, batch) {
      const out = new Map<string, KeyCommit>();
      const keys = [...new Set([...counts.keys(), ...batch.hashes.keys(), ...batch.bots.keys()])].sort();
      await increment(counts, (totals) => {
        let visits = 0;
        let bots = 0;
        for (const key of keys) {
          const n = counts.get(key) ?? 0;
          const b = batch.bots.get(key) ?? 0;
          visits += n;
          bots += b;
          const hashes = batch.hashes.get(key) ?? [];
          const stored = totals.get(key) ?? db.all(TOTAL, { key })[0]?.total;
          // Bots alone make no row for a key nobody has visited (they count toward the server's): a crawler cannot create rows.
          if (n === 0 && hashes.length === 0 && stored === undefined) {
            out.set(key, { total: 0, visitors: 0, bots: 0 });
            continue;
          }
          const row = db.all(ADD_DAY, { key, day: batch.day, visits: n, visitors: fresh(key, batch.day, hashes), bots: b })[0];
          out.set(key, { total: Number(stored ?? 0), visitors: Number(row?.visitors ?? 0), bots: Number(row?.bots ?? 0) });
        }
        const visitors = fresh(SERVER_KEY, batch.day, batch.server);
        const row = db.all(ADD_DAY, { key: SERVER_KEY, day: batch.day, visits, visitors, bots })[0];
        out.set(SERVER_KEY, { total: visits, visitors: Number(row?.visitors ?? 0), bots: Number(row?.bots ?? 0) });
      });
      return out;
    },

    async today(keys, day) {
      const out = new Map<string, { visits: number; visitors: number; bots: number }>();
      for (const key of keys) {
        const r = db.all(sql`select ${d.visits}, ${d.visitors}, ${d.bots} from ${d} where ${d.key} = ${key} and ${d.day} = ${day}`)[0];
        if (r) out.set(key, { visits: Number(r.visits), visitors: Number(r.visitors), bots: Number(r.bots) });
      }
      return out;
    },

    async salt(day, candidate) {
      const salt = db.transaction(() => {
        db.run(sql`insert into ${s} (${bare(s.day)}, ${bare(s.salt)}) values (${day}, ${candidate}) on conflict do nothing`);
        return db.all(sql`select ${s.salt} from ${s} where ${s.day} = ${day}`)[0]?.salt;
      });
      if (typeof salt !== "string") throw new Error("the day's salt could not be read");
      await db.durable();
      return salt;
    },

    async rollUp(today, keepFrom) {
      if (!secureDelete) {
        // Deleted hashes and salts are overwritten in the file, not left in free pages. A Durable Object may
        // refuse the pragma (its storage is the platform's); the rows are deleted all the same.
        try {
          db.run(sql`pragma secure_delete = on`);
        } catch {
          // see above
        }
        secureDelete = true;
      }
      let deleted = 0;
      for (;;) {
        const n = db.all(ROLL_HASHES, { today, n: ROLLUP_BATCH }).length;
        deleted += n;
        await db.durable();
        if (n < ROLLUP_BATCH) break;
        await new Promise((resolve) => setTimeout(resolve, 0));
      }
      db.run(sql`delete from ${s} where ${s.day} < ${today}`);
      db.run(sql`delete from ${d} where ${d.day} < ${keepFrom}`);
      await db.durable();
      return deleted;
    },

    async daily(key, fromDay) {
      const rows = db.all(sql`
        select ${d.day}, ${d.visits}, ${d.visitors}, ${d.bots} from ${d} where ${d.key} = ${key} and ${d.day} >= ${fromDay} order by ${d.day}`);
      return rows.map((r) => ({ day: String(r.day), visits: Number(r.visits), visitors: Number(r.visitors), bots: Number(r.bots) }));
    },

    async hashCount(day) {
      return Number(db.all(sql`select count(*) as n from ${v} where ${v.day} = ${day}`)[0]?.n ?? 0);
    },
  };
}
