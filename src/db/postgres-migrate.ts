import type postgres from "postgres";
import type { MigrationMeta } from "drizzle-orm/migrator";
import { migrations as bundled } from "./postgres-migrations.gen.ts";

// PostgreSQL migrations as every runtime applies them. drizzle's migrator
// reads drizzle/ from disk, which a Worker and a single binary cannot, so
// they come from postgres-migrations.gen.ts, drizzle's own MigrationMeta
// list (same sha256 hashes) written by `npm run db:generate`
// (src/db/bundle-migrations.ts). They are applied in ONE transaction holding
// pg_advisory_xact_lock (Hyperdrive pools per transaction, so a session lock
// would not be safe there). Node, Bun and Deno instances and Durable Objects
// migrating one database take turns, and the bookkeeping is drizzle's own
// table (drizzle.__drizzle_migrations, rows applied when created_at < the
// migration's timestamp, as PgDialect.migrate does), so whichever migrates
// first, the others find the work done.

// Any constant works; it only has to be the same in every instance and object.
const MIGRATION_LOCK = 0x68656164;

export function bundledMigrations(): MigrationMeta[] {
  return [...bundled];
}

/** The newest bundled migration's hash: lets a caller remember that it has migrated. */
export function latestMigrationHash(): string {
  return bundledMigrations().at(-1)?.hash ?? "";
}

export async function migrateBundled(client: postgres.Sql): Promise<void> {
  const migrations = bundledMigrations();
  await client.begin(async (tx) => {
    await tx`select pg_advisory_xact_lock(${MIGRATION_LOCK})`;
    await tx`create schema if not exists drizzle`;
    await tx`create table if not exists drizzle.__drizzle_migrations (id serial primary key, hash text not null, created_at bigint)`;
    const [last] = await tx`select created_at from drizzle.__drizzle_migrations order by created_at desc limit 1`;
    for (const m of migrations) {
      if (last && Number(last.created_at) >= m.folderMillis) continue;
      for (const statement of m.sql) await tx.unsafe(statement);
      await tx`insert into drizzle.__drizzle_migrations (hash, created_at) values (${m.hash}, ${m.folderMillis})`;
    }
  });
}

