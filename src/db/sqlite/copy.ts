import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { sql } from "drizzle-orm/sql/sql";
import type { CopySource, CopyTarget } from "../copy.ts";
import { prepare } from "./executor.ts";
import { DATABASE_FILE, openSqliteFile } from "./file.ts";
import { bare } from "./names.ts";
import { counters as c, daily as d, settings as s, visitsPerMinute as h } from "./schema.ts";

// A data directory as either end of `npm run db:copy` (../copy.ts). It is
// opened like a server opens it, lock included, so a directory a running
// server holds is refused with the same message.

export type SqliteCopyEndpoint = CopySource & CopyTarget;

// Run once per row or page of a copy that may be millions of rows long: rendered once (executor.ts).
const p = sql.placeholder;
const COUNTERS_PAGE = prepare(sql`
  select ${c.key}, ${c.total}, ${c.updatedAt} from ${c} where ${c.key} > ${p("after")} order by ${c.key} limit ${p("limit")}`);
const HISTORY_PAGE = prepare(sql`
  select ${h.key}, ${h.minute}, ${h.visits} from ${h} where (${h.key}, ${h.minute}) > (${p("key")}, ${p("minute")})
  order by ${h.key}, ${h.minute} limit ${p("limit")}`);
const PUT_COUNTER = prepare(sql`
  insert into ${c} (${bare(c.key)}, ${bare(c.total)}, ${bare(c.updatedAt)}) values (${p("key")}, ${p("total")}, ${p("updatedAt")})
  on conflict (${bare(c.key)}) do update set ${bare(c.total)} = excluded.${bare(c.total)}, ${bare(c.updatedAt)} = excluded.${bare(c.updatedAt)}`);
const PUT_MINUTE = prepare(sql`
  insert into ${h} (${bare(h.key)}, ${bare(h.minute)}, ${bare(h.visits)}) values (${p("key")}, ${p("minute")}, ${p("visits")})
  on conflict (${bare(h.key)}, ${bare(h.minute)}) do update set ${bare(h.visits)} = excluded.${bare(h.visits)}`);

const DAILY_PAGE = prepare(sql`
  select ${d.key}, ${d.day}, ${d.visits}, ${d.visitors}, ${d.bots} from ${d} where (${d.key}, ${d.day}) > (${p("key")}, ${p("day")})
  order by ${d.key}, ${d.day} limit ${p("limit")}`);
const PUT_DAY = prepare(sql`
  insert into ${d} (${bare(d.key)}, ${bare(d.day)}, ${bare(d.visits)}, ${bare(d.visitors)}, ${bare(d.bots)})
  values (${p("key")}, ${p("day")}, ${p("visits")}, ${p("visitors")}, ${p("bots")})
  on conflict (${bare(d.key)}, ${bare(d.day)}) do update set ${bare(d.visits)} = excluded.${bare(d.visits)},
    ${bare(d.visitors)} = excluded.${bare(d.visitors)}, ${bare(d.bots)} = excluded.${bare(d.bots)}`);

/** Opens `dir`; as a source it must already hold a database (a copy never creates one to read from). */
export async function openSqliteCopyEndpoint(dir: string, role: "source" | "target"): Promise<SqliteCopyEndpoint> {
  const path = join(resolve(dir), DATABASE_FILE);
  if (role === "source" && !existsSync(path)) throw new Error(`${dir} holds no headcount database (${path} does not exist)`);
  const store = await openSqliteFile(dir);
  const db = store.executor;
  return {
    label: resolve(dir),

    async counters(after, limit) {
      // "" sorts before every key, so it stands for "from the start".
      const rows = db.all(COUNTERS_PAGE, { after: after ?? "", limit });
      return rows.map((r) => ({ key: String(r.key), total: Number(r.total), updatedAt: Number(r.updated_at) }));
    },

    async history(after, limit) {
      const rows = db.all(HISTORY_PAGE, { key: after?.key ?? "", minute: after?.minute ?? Number.MIN_SAFE_INTEGER, limit });
      return rows.map((r) => ({ key: String(r.key), minute: Number(r.minute), visits: Number(r.visits) }));
    },

    async daily(after, limit) {
      // The server's row has key "": a start before it is ("", "") with any day greater, so "" and day "" stand for "from the start".
      const rows = db.all(DAILY_PAGE, { key: after?.key ?? "", day: after?.day ?? "", limit });
      return rows.map((r) => ({ key: String(r.key), day: String(r.day), visits: Number(r.visits), visitors: Number(r.visitors), bots: Number(r.bots) }));
    },

    async settings() {
      return db.all(sql`select ${s.name}, ${s.value} from ${s} order by ${s.name}`).map((r) => ({ name: String(r.name), value: String(r.value) }));
    },

    async countCounters() {
      return Number(db.all(sql`select count(*) as n from ${c}`)[0]?.n ?? 0);
    },

    async putCounters(rows) {
      db.transaction(() => {
        for (const r of rows) db.run(PUT_COUNTER, { key: r.key, total: r.total, updatedAt: r.updatedAt });
      });
    },

    async putHistory(rows) {
      db.transaction(() => {
        for (const r of rows) db.run(PUT_MINUTE, { key: r.key, minute: r.minute, visits: r.visits });
      });
    },

    async putDaily(rows) {
      db.transaction(() => {
        for (const r of rows) db.run(PUT_DAY, { ...r });
      });
    },

    async putSettings(rows) {
      db.transaction(() => {
        for (const r of rows) {
          db.run(sql`
            insert into ${s} (${bare(s.name)}, ${bare(s.value)}) values (${r.name}, ${r.value})
            on conflict (${bare(s.name)}) do update set ${bare(s.value)} = excluded.${bare(s.value)}`);
        }
      });
    },

    close: () => store.close(),
  };
}
