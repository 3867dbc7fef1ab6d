import postgres from "postgres";
import { drizzle } from "drizzle-orm/postgres-js";
import { migrateBundled } from "./postgres-migrate.ts";
import { createSqlStore, type SqlStore } from "./store.ts";

// PostgreSQL from a Durable Object through a Hyperdrive binding (Workers):
// the same queries (store.ts) and the same migrations (drizzle/) as Node, Bun
// and Deno.
//
// Migrations: the bundled ones every runtime applies (postgres-migrate.ts).

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
