import postgres from "postgres";
import { drizzle } from "drizzle-orm/postgres-js";
import { migrate } from "drizzle-orm/postgres-js/migrator";
import type { Clock, Logger } from "../core/ports.ts";
import { Semaphore } from "../core/semaphore.ts";
import { StoreUnavailableError } from "../core/errors.ts";
import type { SQL } from "drizzle-orm";
import { MIGRATIONS_FOLDER } from "./migrations.ts";
import { createSqlStore, type SqlStore } from "./store.ts";

export interface PoolOptions {
  poolMax: number;
  idleTimeoutS: number;
  maxLifetimeS: number;
  connectTimeoutS: number;
  acquireTimeoutMs: number;
}

// Errors that mean "the server is not there" rather than "this query is wrong":
// socket errors, postgres.js connection states, and SQLSTATE classes 08
// (connection exception) and 57P (operator intervention: shutdown, restart).
const UNAVAILABLE = new Set(["ECONNREFUSED", "ECONNRESET", "EPIPE", "ETIMEDOUT", "EHOSTUNREACH", "CONNECTION_CLOSED", "CONNECTION_ENDED", "CONNECTION_DESTROYED", "CONNECT_TIMEOUT"]);

function asUnavailable(err: unknown): unknown {
  const code = String((err as { code?: unknown } | null)?.code ?? "");
  if (UNAVAILABLE.has(code) || code.startsWith("08") || code.startsWith("57P")) {
    return new StoreUnavailableError((err as Error).message);
  }
  return err;
}

// Any constant works; it only has to be the same in every instance.
const MIGRATION_LOCK = 0x68656164;

/**
 * Runs migrations on one dedicated connection holding an advisory lock, so
 * instances starting together do not race to create the same tables.
 */
async function migrateLocked(url: string, opts: PoolOptions, log: Logger): Promise<void> {
  const client = postgres(url, { max: 1, connect_timeout: opts.connectTimeoutS, onnotice: () => {} });
  try {
    await client`select pg_advisory_lock(${MIGRATION_LOCK})`;
    await migrate(drizzle({ client }), { migrationsFolder: MIGRATIONS_FOLDER });
    await client`select pg_advisory_unlock(${MIGRATION_LOCK})`;
    log.debug("migrations applied");
  } finally {
    await client.end({ timeout: 5 });
  }
}

export async function openPostgres(
  url: string,
  opts: PoolOptions,
  log: Logger,
  clock: Clock,
): Promise<SqlStore & { sql: postgres.Sql; pool: Semaphore }> {
  await migrateLocked(url, opts, log);
  const client = postgres(url, {
    max: opts.poolMax,
    idle_timeout: opts.idleTimeoutS,
    max_lifetime: opts.maxLifetimeS,
    connect_timeout: opts.connectTimeoutS,
    onnotice: (notice) => log.debug("postgres notice", { notice: notice.message }),
  });
  // postgres.js queues queries without bound when every connection is busy;
  // the semaphore caps them at the pool size and fails a wait past
  // PG_ACQUIRE_TIMEOUT_MS, so overload is a quick 503, not a growing queue.
  const pool = new Semaphore(opts.poolMax, opts.acquireTimeoutMs, clock);
  const db = drizzle({ client });
  const execute = async (q: SQL) => {
    try {
      return await pool.run(() => db.execute(q));
    } catch (err) {
      throw asUnavailable(err);
    }
  };
  const store = createSqlStore({ execute }, () => client.end({ timeout: 5 }), {
    notify: true,
  });
  // Readiness asks whether the database answers, not whether the pool is free.
  store.ping = async () => {
    await client`select 1`;
  };
  return Object.assign(store, { sql: client, pool });
}
