import { closeSync, existsSync, mkdirSync, openSync, rmSync, statSync } from "node:fs";
import process from "node:process";
import { join, resolve } from "node:path";
import { StoreUnavailableError } from "../../core/errors.ts";
import type { WebhookRule } from "../../core/webhook-rules.ts";
import type { SqliteExecutor } from "./executor.ts";
import { DataDirError, DataDirLockedError } from "./file-errors.ts";
import { FileExecutor } from "./file-executor.ts";
import { openError, openLocked, removePid } from "./file-lock.ts";
import { migrations } from "./migrations.gen.ts";
import { applyMigrations } from "./migrator.ts";
import { createSqliteStore, type SqliteStore } from "./store.ts";

// The embedded store (DESIGN.md §6): one SQLite file in DATA_DIR through the
// built-in node:sqlite (Node 24, Bun, Deno alike), held by one process
// (file-lock.ts). WAL with synchronous=FULL: a commit returns once it is on
// disk, and group commit (core/batcher.ts) makes that one fsync per batch.
// https://nodejs.org/api/sqlite.html, https://sqlite.org/wal.html

export const DATABASE_FILE = "headcount.db";

/**
 * For a statement that meets a lock after start-up, which should not happen:
 * this connection holds the file exclusively. Taking the lock at open uses 0
 * and retries of its own (file-lock.ts).
 */
const BUSY_TIMEOUT_MS = 5000;

export interface SqliteFileOptions {
  /** Webhook rules whose milestone events the increment writes. */
  rules?: readonly WebhookRule[];
}

export interface SqliteFileStore extends SqliteStore {
  /** The database file. */
  readonly path: string;
  /** The open connection, for tools that need more than the store (db:copy). */
  readonly executor: SqliteExecutor;
}

/** Creates the directory if missing; throws DataDirError for one that cannot hold the database. */
function prepareDirectory(dir: string): void {
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
}

/**
 * Whether the directory and the database file can be written, asked of the
 * kernel by doing it: root ignores mode bits but not a read-only mount or an
 * immutable file, and Deno grants access() only with --allow-sys. The probe
 * file is removed at once; the database file is only opened and closed.
 */
function checkWritable(dir: string, path: string): void {
  const fail = (subject: string, what: string, err: unknown) =>
    new DataDirError(subject, "not_writable", `${what} ${subject} is not writable (${(err as { code?: string }).code ?? (err as Error).message})`);
  const probe = join(dir, `.headcount-probe-${process.pid}`);
  try {
    closeSync(openSync(probe, "wx"));
  } catch (err) {
    throw fail(dir, "data directory", err);
  }
  rmSync(probe, { force: true });
  if (!existsSync(path)) return;
  try {
    closeSync(openSync(path, "r+"));
  } catch (err) {
    throw fail(path, "database", err);
  }
}

/**
 * Databases this process holds. Opening one again must fail before anything
 * touches its file: closing any descriptor of a file drops the process's
 * POSIX locks on it (file-lock.ts), the very lock that keeps others out.
 */
const held = new Set<string>();

/**
 * Opens (creating and migrating if needed) the database in `dataDir` and
 * holds it until close. Throws DataDirLockedError when another process holds
 * it, DataDirError when the directory or file cannot be used; either way
 * nothing in the directory was changed.
 */
export async function openSqliteFile(dataDir: string, opts: SqliteFileOptions = {}): Promise<SqliteFileStore> {
  const dir = resolve(dataDir);
  prepareDirectory(dir);
  const path = join(dir, DATABASE_FILE);
  if (held.has(path)) throw new DataDirLockedError(dir, process.pid);
  checkWritable(dir, path);
  const db = await openLocked(dir, path);
  const exec = new FileExecutor(db);
  try {
    const mode = db.prepare("pragma journal_mode = wal").get()?.journal_mode;
    if (mode !== "wal") throw new Error(`journal_mode is ${String(mode)}, not wal`);
    db.exec(`pragma synchronous = full; pragma busy_timeout = ${BUSY_TIMEOUT_MS}`);
    applyMigrations(exec, migrations);
  } catch (err) {
    removePid(dir);
    exec.close();
    throw err instanceof DataDirError ? err : openError(path, err);
  }
  held.add(path);
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
      held.delete(path);
    },
  });
  return Object.assign(store, { path, executor: exec as SqliteExecutor });
}
