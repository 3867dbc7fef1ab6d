import postgres from "postgres";
import { drizzle } from "drizzle-orm/postgres-js";
import type { Clock, Logger } from "../core/ports.ts";
import { Semaphore } from "../core/semaphore.ts";
import { StoreUnavailableError } from "../core/errors.ts";
import type { SQL } from "drizzle-orm";
import { migrateBundled } from "./postgres-migrate.ts";
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

/**
 * Runs the bundled migrations (src/db/postgres-migrations.gen.ts: no files
 * read at run time, so a single binary can migrate) on one dedicated
 * connection, in one transaction holding an advisory lock, so instances and
 * Durable Objects starting together take turns (hyperdrive.ts).
 */
async function migrateLocked(url: string, opts: PoolOptions, log: Logger): Promise<void> {
  const client = postgres(url, { max: 1, connect_timeout: opts.connectTimeoutS, onnotice: () => {} });
  try {
    await migrateBundled(client);
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
