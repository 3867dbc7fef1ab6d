import { CasingCache } from "drizzle-orm/casing";
import { fillPlaceholders, type SQL } from "drizzle-orm/sql/sql";

// What the SQLite store (store.ts) needs of a database: synchronous statements
// and transactions, as both SQLite drivers offer them (node:sqlite's
// DatabaseSync, a Durable Object's ctx.storage.sql), and a way to wait until
// what was committed is durable.
//
// Queries are Drizzle `sql` templates rendered here by the SQL object's own
// toQuery rather than by SQLiteSyncDialect: importing the dialect loads ~80
// more drizzle-orm modules (query builders, relational queries), and on Node
// each module loaded from drizzle-orm re-reads its 178 KB package.json exports
// map, ~2 MB of RSS apiece. Rendering a template that names schema objects
// costs ~20-30 µs, so the per-key statements of an increment are prepared
// once (prepare(), with sql.placeholder) and only bound per call.

export type Row = Record<string, unknown>;
export type Values = Record<string, unknown>;

/** A query rendered once; its parameters are all `sql.placeholder`s, bound by name per call. */
export interface PreparedQuery {
  readonly text: string;
  readonly params: readonly unknown[];
}

export type Query = SQL | PreparedQuery;

export interface SqliteExecutor {
  /** Runs `query` and returns its rows (statements with RETURNING included). */
  all(query: Query, values?: Values): Row[];
  run(query: Query, values?: Values): void;
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

/** Renders `query` once, for statements run many times (see the header). */
export function prepare(query: SQL): PreparedQuery {
  const { sql, params } = query.toQuery(config);
  return { text: sql, params };
}

/** SQLite text with `?` placeholders, and the values to bind. */
export function render(query: Query, values: Values = {}): RenderedQuery {
  if ("text" in query) return { text: query.text, params: fillPlaceholders([...query.params], values) };
  const { sql, params } = query.toQuery(config);
  return { text: sql, params };
}
