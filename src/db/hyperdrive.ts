import { createHash } from "node:crypto";
import postgres from "postgres";
import { drizzle } from "drizzle-orm/postgres-js";
import type { MigrationMeta } from "drizzle-orm/migrator";
import { createSqlStore, type SqlStore } from "./store.ts";
import journal from "../../drizzle/meta/_journal.json" with { type: "json" };
import m0000 from "../../drizzle/0000_init.sql";
import m0001 from "../../drizzle/0001_webhooks.sql";
import m0002 from "../../drizzle/0002_outbox_claim_index.sql";

// PostgreSQL from a Durable Object through a Hyperdrive binding (Workers):
// the same queries (store.ts) and the same migrations (drizzle/) as Node, Bun
// and Deno.
//
// Migrations: drizzle's migrator reads drizzle/ from disk, which a Worker
// cannot, so the .sql files are bundled as text (wrangler.toml `[[rules]]
// type = "Text"`) with the journal, giving drizzle's own MigrationMeta list
// (same sha256 hashes). They are applied in ONE transaction holding
// pg_advisory_xact_lock: Hyperdrive pools per transaction, so the session lock
// src/db/postgres.ts takes would not be safe here. The key is the same, so
// Node instances and Durable Objects migrating one database take turns, and
// the bookkeeping is drizzle's own table (drizzle.__drizzle_migrations, rows
// applied when created_at < the migration's timestamp, as PgDialect.migrate does),
// so whichever runtime migrates first, the others find the work done.
//
// A new file in drizzle/ needs one import line here; until it has one,
// bundledMigrations() throws at start-up naming it.

const BUNDLED_SQL: Record<string, string> = { "0000_init": m0000, "0001_webhooks": m0001, "0002_outbox_claim_index": m0002 };

/** Same lock key as src/db/postgres.ts. */
const MIGRATION_LOCK = 0x68656164;

export function bundledMigrations(): MigrationMeta[] {
  return journal.entries.map((entry) => {
    const query = BUNDLED_SQL[entry.tag];
    if (query === undefined) throw new Error(`migration ${entry.tag} is not bundled: import it in src/db/hyperdrive.ts`);
    return {
      sql: query.split("--> statement-breakpoint"),
      bps: entry.breakpoints,
      folderMillis: entry.when,
      hash: createHash("sha256").update(query).digest("hex"),
    };
  });
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

export interface HyperdriveStore extends SqlStore {
  /** Applies the bundled migrations (idempotent, serialised by the advisory lock). */
  migrate(): Promise<void>;
}

/**
 * postgres.js over Hyperdrive's connection string. Hyperdrive keeps the real
 * pool, so the client holds few connections; fetch_types is off because the
 * queries only use built-in types (and it saves a round trip per connection).
 */
export function openHyperdrive(connectionString: string, connectTimeoutS: number): HyperdriveStore {
  const client = postgres(connectionString, { max: 4, fetch_types: false, connect_timeout: connectTimeoutS, onnotice: () => {} });
  const store = createSqlStore(drizzle({ client }), () => client.end({ timeout: 5 }));
  return Object.assign(store, { migrate: () => migrateBundled(client) });
}
