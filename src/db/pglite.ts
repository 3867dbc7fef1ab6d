import { PGlite } from "@electric-sql/pglite";
import { drizzle } from "drizzle-orm/pglite";
import { migrate } from "drizzle-orm/pglite/migrator";
import { MIGRATIONS_FOLDER } from "./migrations.ts";
import { createSqlStore, type SqlStore } from "./store.ts";

/**
 * Embedded PostgreSQL. `dataDir` undefined means in memory (tests). PGlite
 * takes no lock of its own (electric-sql/pglite#1106), so callers that open a
 * directory must hold one first: see runtime/data-dir-lock.ts.
 */
export async function openPglite(dataDir: string | undefined): Promise<SqlStore> {
  const client = dataDir === undefined ? new PGlite() : new PGlite(dataDir);
  await client.waitReady;
  const db = drizzle({ client });
  await migrate(db, { migrationsFolder: MIGRATIONS_FOLDER });
  return createSqlStore(db, () => client.close());
}
