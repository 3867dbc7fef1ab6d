import { closeSync, existsSync, mkdirSync, openSync, rmSync, statSync } from "node:fs";
import process from "node:process";
import { join, resolve } from "node:path";
import { DatabaseSync, type StatementSync } from "node:sqlite";
import { sql } from "drizzle-orm/sql/sql";
import { StoreUnavailableError } from "../../core/errors.ts";
import type { WebhookRule } from "../../core/webhook-rules.ts";
import { render, type Query, type Row, type SqliteExecutor, type Values } from "./executor.ts";
import { asUnavailable, DataDirError } from "./file-errors.ts";
import { lockDatabase, openError, removePid } from "./file-lock.ts";
import { migrations } from "./migrations.gen.ts";
import { applyMigrations } from "./migrator.ts";
import { bare } from "./names.ts";
import { settings } from "./schema.ts";
import { createSqliteStore, type SqliteStore } from "./store.ts";

// The embedded store (DESIGN.md §6): one SQLite file in DATA_DIR through the
// built-in node:sqlite (Node 24, Bun, Deno alike), held by one process
// (file-lock.ts). WAL with synchronous=FULL: a commit returns once it is on
// disk, and group commit (core/batcher.ts) makes that one fsync per batch.
// https://nodejs.org/api/sqlite.html, https://sqlite.org/wal.html

export const DATABASE_FILE = "headcount.db";

/** Prepared statements kept per connection; the store's queries are a few dozen shapes. */
const STATEMENT_CACHE = 64;
/** Waits for a lock inside the process (another connection of a copy tool, say); the file lock keeps other processes out. */
const BUSY_TIMEOUT_MS = 5000;

export interface SqliteFileOptions {
  /** Webhook rules whose milestone events the increment writes. */
  rules?: readonly WebhookRule[];
  /** Open even beside an earlier headcount's pgdata/ (db:copy filling the directory from it). */
  besidePglite?: boolean;
}

export interface SqliteFileStore extends SqliteStore {
  /** The database file. */
  readonly path: string;
  /** The open connection, for tools that need more than the store (db:copy). */
  readonly executor: SqliteExecutor;
}

/** node:sqlite behind the executor contract; disk faults surface as StoreUnavailableError. */
class FileExecutor implements SqliteExecutor {
  readonly #db: DatabaseSync;
  readonly #statements = new Map<string, StatementSync>();
  /** Set by a failed write, cleared by a commit: readiness probes the disk while it is set. */
  failing: StoreUnavailableError | null = null;

  constructor(db: DatabaseSync) {
    this.#db = db;
  }

  #prepare(query: Query, values?: Values): { statement: StatementSync; params: unknown[] } {
    const { text, params } = render(query, values);
    let statement = this.#statements.get(text);
    if (statement === undefined) {
      if (this.#statements.size >= STATEMENT_CACHE) this.#statements.clear();
      statement = this.#db.prepare(text);
      this.#statements.set(text, statement);
    }
    return { statement, params };
  }

  #guard<T>(fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      const mapped = asUnavailable(err);
      if (mapped instanceof StoreUnavailableError) this.failing = mapped;
      throw mapped;
    }
  }

  all(query: Query, values?: Values): Row[] {
    return this.#guard(() => {
      const { statement, params } = this.#prepare(query, values);
      // node:sqlite takes null, numbers, bigints, strings and bytes: what the store binds.
      return statement.all(...(params as Array<string | number | null>)) as Row[];
    });
  }

  run(query: Query, values?: Values): void {
    this.#guard(() => {
      const { statement, params } = this.#prepare(query, values);
      statement.run(...(params as Array<string | number | null>));
    });
  }

  script(text: string): void {
    this.#guard(() => this.#db.exec(text));
  }

  transaction<T>(fn: () => T): T {
    if (this.#db.isTransaction) return fn();
    return this.#guard(() => {
      this.#db.exec("begin immediate");
      try {
        const result = fn();
        this.#db.exec("commit");
        this.failing = null;
        return result;
      } catch (err) {
        // A failed COMMIT (disk full, I/O error) may already have rolled back.
        if (this.#db.isTransaction) this.#db.exec("rollback");
        throw err;
      }
    });
  }

  /** synchronous = FULL: a commit has reached the disk when it returns. */
  async durable(): Promise<void> {}

  ping(): void {
    this.#guard(() => this.#db.prepare("select 1").get());
    // After a failed write, readiness stays down until a write gets through:
    // a full or read-only disk still answers reads.
    if (this.failing !== null) {
      this.transaction(() =>
        this.run(sql`insert into ${settings} (${bare(settings.name)}, ${bare(settings.value)}) values ('write_probe', ${String(Date.now())})
          on conflict (${bare(settings.name)}) do update set ${bare(settings.value)} = excluded.${bare(settings.value)}`),
      );
    }
  }

  close(): void {
    this.#statements.clear();
    if (this.#db.isOpen) this.#db.close();
  }
}

/** Creates the directory if missing; throws DataDirError for one that cannot hold the database. */
function prepareDirectory(dir: string, besidePglite: boolean): void {
  let isDir: boolean;
  try {
    isDir = statSync(dir).isDirectory();
  } catch {
    try {
      mkdirSync(dir, { recursive: true });
    } catch (err) {
      throw new DataDirError(dir, "not_writable", `data directory ${dir} cannot be created (${(err as Error).message})`);
    }
    return;
  }
  if (!isDir) throw new DataDirError(dir, "not_a_directory", `data directory ${dir} is not a directory`);
  if (!besidePglite && existsSync(join(dir, "pgdata", "PG_VERSION")) && !existsSync(join(dir, DATABASE_FILE))) {
    throw new DataDirError(
      dir,
      "legacy_pglite",
      `data directory ${dir} holds an embedded PostgreSQL (PGlite) database from an earlier headcount in pgdata/; ` +
        `copy it into SQLite with \`npm run db:copy -- --from ${join(dir, "pgdata")} --to ${dir}\`, or move pgdata/ away to start empty`,
    );
  }
}

/**
 * Whether the directory and the database file can be written, asked of the
 * kernel by doing it: root ignores mode bits but not a read-only mount or an
 * immutable file, and Deno grants access() only with --allow-sys. The probe
 * file is removed at once; the database file is only opened and closed.
 */
function checkWritable(dir: string, path: string): void {
  const probe = join(dir, `.headcount-probe-${process.pid}`);
  for (const [target, flags, what] of [[probe, "wx", "data directory"], [path, "r+", "database"]] as const) {
    if (target === path && !existsSync(path)) continue;
    try {
      closeSync(openSync(target, flags));
    } catch (err) {
      const reason = (err as { code?: string }).code ?? (err as Error).message;
      throw new DataDirError(target === probe ? dir : path, "not_writable", `${what} ${target === probe ? dir : path} is not writable (${reason})`);
    }
    if (target === probe) rmSync(probe, { force: true });
  }
}

/**
 * Opens (creating and migrating if needed) the database in `dataDir` and
 * holds it until close. Throws DataDirLockedError when another process holds
 * it, DataDirError when the directory or file cannot be used; either way
 * nothing in the directory was changed.
 */
export async function openSqliteFile(dataDir: string, opts: SqliteFileOptions = {}): Promise<SqliteFileStore> {
  const dir = resolve(dataDir);
  prepareDirectory(dir, opts.besidePglite ?? false);
  const path = join(dir, DATABASE_FILE);
  checkWritable(dir, path);
  let db: DatabaseSync;
  try {
    db = new DatabaseSync(path);
  } catch (err) {
    throw openError(path, err);
  }
  const exec = new FileExecutor(db);
  try {
    await lockDatabase(db, dir, path);
    try {
      const mode = db.prepare("pragma journal_mode = wal").get()?.journal_mode;
      if (mode !== "wal") throw new Error(`journal_mode is ${String(mode)}, not wal`);
      db.exec(`pragma synchronous = full; pragma busy_timeout = ${BUSY_TIMEOUT_MS}`);
      applyMigrations(exec, migrations);
    } catch (err) {
      removePid(dir);
      throw err instanceof DataDirError ? err : openError(path, err);
    }
  } catch (err) {
    exec.close();
    throw err;
  }
  let closed = false;
  const store = createSqliteStore(exec, {
    rules: opts.rules,
    ping: () => {
      if (closed) throw new StoreUnavailableError("the database is closed");
      exec.ping();
    },
    async close() {
      if (closed) return;
      closed = true;
      removePid(dir); // while the lock is still held, so it is never a newer owner's
      exec.close();
    },
  });
  return Object.assign(store, { path, executor: exec as SqliteExecutor });
}
