import { CasingCache } from "drizzle-orm/casing";
import type { SQL } from "drizzle-orm/sql/sql";

// What the SQLite store (store.ts) needs of a database: synchronous statements
// and transactions, as both SQLite drivers offer them (node:sqlite's
// DatabaseSync, a Durable Object's ctx.storage.sql), and a way to wait until
// what was committed is durable.
//
// Queries are Drizzle `sql` templates rendered here by the SQL object's own
// toQuery rather than by SQLiteSyncDialect: importing the dialect loads ~80
// more drizzle-orm modules (query builders, relational queries), and on Node
// each module loaded from drizzle-orm re-reads its 178 KB package.json exports
// map, ~2 MB of RSS apiece. Measured: sqlite-core's index 264 MB, the dialect
// 205 MB, this file plus the schema ~110 MB (node 24, bench/NOTES.md).

export type Row = Record<string, unknown>;

export interface SqliteExecutor {
  /** Runs `query` and returns its rows (statements with RETURNING included). */
  all(query: SQL): Row[];
  run(query: SQL): void;
  /** Runs trusted SQL text that may hold several statements (a migration). */
  script(text: string): void;
  /** Runs `fn` in one transaction: committed when it returns, rolled back when it throws. */
  transaction<T>(fn: () => T): T;
  /** Resolves once everything committed so far is on disk. */
  durable(): Promise<void>;
}

export interface RenderedQuery {
  text: string;
  params: unknown[];
}

const casing = new CasingCache();
const quote = (name: string) => `"${name.replace(/"/g, '""')}"`;
const config = {
  casing,
  escapeName: quote,
  escapeParam: () => "?",
  escapeString: (value: string) => `'${value.replace(/'/g, "''")}'`,
};

/** SQLite text with `?` placeholders, and the values to bind. */
export function render(query: SQL): RenderedQuery {
  const { sql, params } = query.toQuery(config);
  return { text: sql, params };
}
