import { readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { DatabaseSync } from "node:sqlite";
import { DataDirError, DataDirLockedError, sqliteCode } from "./file-errors.ts";
import { getTableName } from "drizzle-orm/table";
import { MIGRATIONS_TABLE } from "./migrator.ts";
import { counters } from "./schema.ts";

// One server per data directory, held by SQLite's own lock on the database
// file (https://sqlite.org/pragma.html#pragma_locking_mode): in EXCLUSIVE
// locking mode the connection's first write lock is never released, so the
// lock lives exactly as long as the process's connection. A second process
// gets SQLITE_BUSY; a crash (SIGKILL included) releases the lock with the
// process, so there is no stale lock and no take-over race, and Deno needs no
// --allow-run to ask whether an owner is alive. The pid file is only
// informational: it names the owner in the refusal.
//
// POSIX record locks belong to the process and are dropped when ANY of its
// descriptors for the file closes, so nothing else in the process may open
// the database file while the lock is held (https://sqlite.org/howtocorrupt.html#_posix_advisory_locks_canceled_by_a_separate_thread_doing_close_).

export const PID_FILE = "headcount.pid";

/**
 * How long openers racing for one file keep trying. In exclusive locking
 * mode even a failed attempt keeps the SHARED lock it took on the way, so
 * two processes opening in the same instant can each block the other for
 * good (test/sqlite-lock.test.ts saw both refused). A refused attempt
 * therefore closes its connection, dropping every lock, and tries again
 * after a random pause; against a running owner every attempt fails and the
 * refusal comes after this long.
 */
const LOCK_RETRY_MS = 300;

/**
 * How long a refused opener waits for a just-started owner to write its pid.
 * Writing it takes microseconds, but a loaded machine can stall a process for
 * hundreds of milliseconds (seen at a load of 7 on two cores). A refusal
 * from an owner running for a while pays the whole wait: its pid file is
 * older than the attempt and so indistinguishable from a crashed owner's.
 */
const PID_WAIT_MS = 1000;

/**
 * Opens the database at `path` holding its write lock for good, and checks
 * the file is headcount's (empty, or holding drizzle's migrations table and
 * `counters`). Throws DataDirLockedError or DataDirError having written
 * nothing.
 */
export async function openLocked(dir: string, path: string): Promise<DatabaseSync> {
  const attempted = Date.now();
  for (;;) {
    const db = lockedOrNull(path);
    if (db !== null) {
      checkHeadcount(db, path);
      writePid(dir);
      return db;
    }
    if (Date.now() - attempted >= LOCK_RETRY_MS) throw new DataDirLockedError(dir, await ownerPid(dir, attempted));
    await new Promise((r) => setTimeout(r, 5 + Math.random() * 30));
  }
}

/** A connection holding the exclusive lock, or null when another holds it (the connection is then closed). */
function lockedOrNull(path: string): DatabaseSync | null {
  let db: DatabaseSync;
  try {
    db = new DatabaseSync(path);
  } catch (err) {
    throw openError(path, err);
  }
  try {
    db.exec("pragma locking_mode = exclusive; pragma busy_timeout = 0");
    db.exec("begin exclusive");
    return db;
  } catch (err) {
    db.close();
    if (sqliteCode(err) === "SQLITE_BUSY") return null;
    throw openError(path, err);
  }
}

/** Inside the lock's transaction: refuses another application's database, then commits (the lock stays). */
function checkHeadcount(db: DatabaseSync, path: string): void {
  let tables: string[];
  try {
    tables = db.prepare("select name from sqlite_master where type = 'table'").all().map((r) => String(r.name));
  } catch (err) {
    db.close();
    throw openError(path, err);
  }
  if (tables.length > 0 && !(tables.includes(MIGRATIONS_TABLE) && tables.includes(getTableName(counters)))) {
    db.close(); // rolls back: nothing was written
    throw new DataDirError(
      path,
      "foreign_database",
      `${path} is a SQLite database but not headcount's (tables: ${tables.slice(0, 5).join(", ")}); ` +
        `set DATA_DIR to another directory or move the file away`,
    );
  }
  db.exec("commit"); // the exclusive lock stays: locking_mode = exclusive
}

/** A start-up failure of the database file as a DataDirError naming the path and the problem. */
export function openError(path: string, err: unknown): DataDirError {
  const code = sqliteCode(err);
  const detail = `${code ?? "error"}: ${(err as Error).message}`;
  if (code === "SQLITE_NOTADB") return new DataDirError(path, "not_sqlite", `${path} is not a SQLite database (${detail})`);
  if (code === "SQLITE_READONLY" || code === "SQLITE_CANTOPEN") {
    return new DataDirError(path, "not_writable", `${path} cannot be opened for writing (${detail})`);
  }
  if (code === "SQLITE_FULL") return new DataDirError(path, "unusable", `${path} cannot be written: disk full (${detail})`);
  return new DataDirError(path, "unusable", `${path} cannot be used (${detail})`);
}

function writePid(dir: string): void {
  try {
    writeFileSync(join(dir, PID_FILE), `${process.pid}\n`);
  } catch {
    // Informational only: the lock is what keeps a second server out.
  }
}

/** Removes the pid file if it is this process's (call before the lock is released). */
export function removePid(dir: string): void {
  const file = join(dir, PID_FILE);
  try {
    if (Number(readFileSync(file, "utf8").trim()) === process.pid) rmSync(file);
  } catch {
    // gone already
  }
}

/**
 * The owner's pid from the pid file. An owner writes it just after taking
 * the lock, so a file older than our attempt may be a crashed process's:
 * wait briefly for a newer one, then take what is there.
 */
async function ownerPid(dir: string, attempted: number): Promise<number | null> {
  const file = join(dir, PID_FILE);
  const deadline = Date.now() + PID_WAIT_MS;
  let seen: number | null = null;
  for (;;) {
    try {
      const fresh = statSync(file).mtimeMs >= attempted;
      const n = Number(readFileSync(file, "utf8").trim());
      if (Number.isSafeInteger(n) && n > 0) {
        seen = n;
        if (fresh) return n;
      }
    } catch {
      // not written yet, or the owner has just stopped
    }
    if (Date.now() >= deadline) return seen;
    await new Promise((r) => setTimeout(r, 20));
  }
}
