import { sql } from "drizzle-orm/sql/sql";
import type { StoreMaintenance } from "../maintenance.ts";
import type { SqliteExecutor } from "./executor.ts";
import { counters as c, visitsPerMinute as h } from "./schema.ts";

// MAX_KEYS and HISTORY_RETENTION_DAYS on SQLite (the file, a Durable Object):
// the same contract as PostgreSQL's (../maintenance.ts).

export function sqliteMaintenance(db: SqliteExecutor): StoreMaintenance {
  return {
    async countKeys() {
      // Walks the smallest index (counters_total); once at start on the file, since only this process writes it.
      return Number(db.all(sql`select count(*) as n from ${c}`)[0]?.n ?? 0);
    },

    async deleteKey(key) {
      const existed = db.transaction(() => {
        const gone = db.all(sql`delete from ${c} where ${c.key} = ${key} returning ${c.key}`);
        db.run(sql`delete from ${h} where ${h.key} = ${key}`);
        return gone.length > 0;
      });
      await db.durable();
      return existed;
    },

    async pruneHistory(before, limit) {
      // By rowid through the minute index (visits_per_minute_minute): one bounded statement, the loop free between.
      const gone = db.all(sql`
        delete from ${h} where rowid in (select rowid from ${h} where ${h.minute} < ${before} limit ${limit}) returning 1`);
      if (gone.length > 0) await db.durable();
      return gone.length;
    },
  };
}
