import type { Config } from "../core/config.ts";
import type { Bus, Clock, Logger } from "../core/ports.ts";
import type { Semaphore } from "../core/semaphore.ts";
import type { SqlStore } from "../db/store.ts";

// Store selection (DESIGN.md §6): PostgreSQL when DATABASE_URL is set, else
// the embedded SQLite file in DATA_DIR. Each is imported only when chosen, so
// a server loads one driver.

/** PostgreSQL's extras: the pool's gauges and the bus between instances on the same database. */
export interface SharedDatabase {
  pool: Semaphore;
  bus(): Bus;
}

export type OpenedStore =
  | { kind: "sqlite"; store: SqlStore; postgres?: undefined }
  | { kind: "postgres"; store: SqlStore; postgres: SharedDatabase };

export async function openStore(config: Config, log: Logger, clock: Clock): Promise<OpenedStore> {
  if (config.databaseUrl) {
    const url = config.databaseUrl;
    const [{ openPostgres }, { createPgBus }] = await Promise.all([import("../db/postgres.ts"), import("../db/pg-bus.ts")]);
    const store = await openPostgres(url, config.pg, log, clock);
    const bus = () => createPgBus(url, store.sql, log, { connectTimeoutS: config.pg.connectTimeoutS });
    return { kind: "postgres", store, postgres: { pool: store.pool, bus } };
  }
  // The file is locked for this process until it closes (src/db/sqlite/file-lock.ts): a second server is refused.
  const { openSqliteFile } = await import("../db/sqlite/file.ts");
  return { kind: "sqlite", store: await openSqliteFile(config.dataDir, { rules: config.webhooks.rules }) };
}
