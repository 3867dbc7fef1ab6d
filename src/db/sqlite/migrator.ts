import { sql } from "drizzle-orm/sql/sql";
import type { MigrationMeta } from "drizzle-orm/migrator";
import type { SqliteExecutor } from "./executor.ts";

// Applies the bundled migrations (migrations.gen.ts) with drizzle's own
// bookkeeping, as drizzle-orm's durable-sqlite migrator and
// SQLiteSyncDialect.migrate keep it: a `__drizzle_migrations` table whose
// newest created_at is the last applied migration's folderMillis. So a
// Durable Object that drizzle's migrator set up before is recognised and
// nothing is applied twice. Everything runs in one transaction.

export const MIGRATIONS_TABLE = "__drizzle_migrations";

/** Applies what is missing; returns how many migrations were applied. */
export function applyMigrations(db: SqliteExecutor, migrations: readonly MigrationMeta[]): number {
  const table = sql.identifier(MIGRATIONS_TABLE);
  return db.transaction(() => {
    db.run(sql`create table if not exists ${table} (id SERIAL PRIMARY KEY, hash text NOT NULL, created_at numeric)`);
    const last = db.all(sql`select created_at from ${table} order by created_at desc limit 1`)[0];
    let applied = 0;
    for (const m of migrations) {
      if (last !== undefined && Number(last.created_at) >= m.folderMillis) continue;
      for (const statement of m.sql) db.script(statement);
      db.run(sql`insert into ${table} ("hash", "created_at") values (${m.hash}, ${m.folderMillis})`);
      applied++;
    }
    return applied;
  });
}
