import { sql } from "drizzle-orm";
import { rowsOf } from "./rows.ts";
import { counters, visitsPerMinute } from "./schema.ts";
import type { SqlExecutor } from "./store.ts";

// What keeps PostgreSQL's tables bounded (MAX_KEYS, HISTORY_RETENTION_DAYS):
// the number of keys, deleting a key, pruning old history in batches. Apart
// from the counting statements in store.ts.

export interface StoreMaintenance {
  /** Distinct keys in the store: one count, at start and on a slow refresh, never per visit. */
  countKeys(): Promise<number>;
  /** Deletes a key and its history (admin); true if it existed. Watchers elsewhere hear a reset to 0. */
  deleteKey(key: string): Promise<boolean>;
  /** Deletes at most `limit` per-minute history rows older than `before` (epoch ms); returns how many. */
  pruneHistory(before: number, limit: number): Promise<number>;
}

export function pgMaintenance(db: SqlExecutor, channel: string, notify: () => boolean | undefined): StoreMaintenance {
  return {
    async countKeys() {
      const rows = rowsOf(await db.execute(sql`select count(*)::text as n from ${counters}`));
      return Number(rows[0]?.n ?? 0);
    },

    async deleteKey(key) {
      const announce = notify() ? sql.raw(`, pg_notify('${channel}', json_build_object('k', key, 't', 0, 'r', true)::text)`) : sql``;
      const rows = rowsOf(
        await db.execute(sql`
          with gone as (delete from ${counters} where key = ${key}::text returning key),
          history as (delete from ${visitsPerMinute} where key = ${key}::text)
          select key${announce} from gone`),
      );
      return rows.length > 0;
    },

    async pruneHistory(before, limit) {
      // The oldest rows through the minute index (visits_per_minute_minute), deleted by a TID scan: each statement
      // touches at most `limit` rows. (`ctid in (select …)` would hash-join against a scan of the whole table.)
      const rows = rowsOf(
        await db.execute(sql`
          with gone as (
            delete from ${visitsPerMinute} where ctid = any(array(
              select ctid from ${visitsPerMinute} where minute < to_timestamp(${before}::bigint / 1000.0) limit ${limit}::int))
            returning 1
          )
          select count(*)::text as n from gone`),
      );
      return Number(rows[0]?.n ?? 0);
    },
  };
}
