import type { DurableObjectStorage } from "@cloudflare/workers-types/index.ts";
import { sql } from "drizzle-orm/sql/sql";
import type { WebhookRule } from "../../core/webhook-rules.ts";
import { render, type Query, type Row, type SqliteExecutor, type Values } from "./executor.ts";
import { migrations } from "./migrations.gen.ts";
import { applyMigrations } from "./migrator.ts";
import { createSqliteStore, type SqliteStore } from "./store.ts";

// The store on a Durable Object's own SQLite (Workers): the same queries as
// the file in DATA_DIR (store.ts). Statements run synchronously inside the
// object; `storage.sync()` then waits until the writes are durable, so
// nothing is acknowledged before it is.
// https://developers.cloudflare.com/durable-objects/api/sqlite-storage-api/

/** What one Durable Object's room uses of its store. */
export type DurableSqliteStore = SqliteStore;

export interface DurableSqliteOptions {
  /** Webhook rules: milestone events are written in the increment's transaction. */
  rules?: readonly WebhookRule[];
  /** Called inside a commit that wrote webhook events, before it is made durable (the room sets its alarm). */
  onFired?: () => void;
}

function durableExecutor(storage: DurableObjectStorage): SqliteExecutor {
  const exec = (query: Query, values?: Values) => {
    const { text, params } = render(query, values);
    return storage.sql.exec(text, ...params);
  };
  return {
    all: (query, values) => exec(query, values).toArray() as Row[],
    run: (query, values) => void exec(query, values).toArray(),
    script: (text) => void storage.sql.exec(text).toArray(),
    transaction: (fn) => storage.transactionSync(fn),
    durable: () => storage.sync(),
  };
}

/** Migrates (drizzle-sqlite/, bundled) and returns the store. Call inside blockConcurrencyWhile. */
export async function openDurableSqlite(storage: DurableObjectStorage, opts: DurableSqliteOptions = {}): Promise<DurableSqliteStore> {
  const db = durableExecutor(storage);
  applyMigrations(db, migrations);
  return createSqliteStore(db, {
    rules: opts.rules,
    onFired: opts.onFired,
    ping: () => void db.all(sql`select 1`),
    // The object's storage lives as long as the object; nothing to close.
    close: async () => {},
  });
}
