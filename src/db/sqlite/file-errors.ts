import { StoreUnavailableError } from "../../core/errors.ts";

// What can go wrong with the SQLite file in DATA_DIR, as typed errors. At
// start-up each one names the path and the problem and is exit-worthy; while
// running, a full, read-only or failing disk becomes core's
// StoreUnavailableError, which the batcher retries.

export type DataDirProblem =
  | "not_a_directory"
  | "not_writable"
  | "not_sqlite"
  | "foreign_database"
  | "unusable";

/** The data directory (or the database in it) cannot be used; nothing in it was changed. */
export class DataDirError extends Error {
  readonly path: string;
  readonly problem: DataDirProblem;
  constructor(path: string, problem: DataDirProblem, message: string) {
    super(message);
    this.name = "DataDirError";
    this.path = path;
    this.problem = problem;
  }
}

/** Another process holds the data directory's database. */
export class DataDirLockedError extends Error {
  readonly dir: string;
  readonly pid: number | null;
  constructor(dir: string, pid: number | null) {
    super(
      `data directory ${dir} is locked by another headcount process (pid ${pid ?? "unknown"}); ` +
        `stop that process or set DATA_DIR to another directory`,
    );
    this.name = "DataDirLockedError";
    this.dir = dir;
    this.pid = pid;
  }
}

// SQLite's primary result codes (https://sqlite.org/rescode.html) and the
// text sqlite3_errstr gives each: Deno's node:sqlite errors carry only the
// message, Node's and Bun's also `errcode` (possibly an extended code).
const CODES: ReadonlyArray<[code: number, name: string, errstr: string]> = [
  [5, "SQLITE_BUSY", "database is locked"],
  [8, "SQLITE_READONLY", "attempt to write a readonly database"],
  [10, "SQLITE_IOERR", "disk I/O error"],
  [11, "SQLITE_CORRUPT", "database disk image is malformed"],
  [13, "SQLITE_FULL", "database or disk is full"],
  [14, "SQLITE_CANTOPEN", "unable to open database file"],
  [26, "SQLITE_NOTADB", "file is not a database"],
];

/** The SQLite primary result code's name behind `err`, if it is a SQLite error we know. */
export function sqliteCode(err: unknown): string | undefined {
  const e = err as { errcode?: unknown; message?: unknown } | null;
  if (typeof e?.errcode === "number") {
    const primary = e.errcode & 0xff;
    const hit = CODES.find(([code]) => code === primary);
    if (hit) return hit[1];
  }
  const message = typeof e?.message === "string" ? e.message : "";
  return CODES.find(([, , errstr]) => message.includes(errstr))?.[1];
}

const CAUSES: Record<string, string> = {
  SQLITE_BUSY: "database is locked",
  SQLITE_READONLY: "read-only file or file system",
  SQLITE_IOERR: "disk I/O error",
  SQLITE_FULL: "disk full",
  SQLITE_CANTOPEN: "cannot open the database file",
};

/**
 * `err` as StoreUnavailableError when it means the disk, not the query, is at
 * fault (full, read-only, failing, locked), so the batcher retries; any other
 * error unchanged.
 */
export function asUnavailable(err: unknown): unknown {
  if (err instanceof StoreUnavailableError) return err;
  const code = sqliteCode(err);
  const cause = code === undefined ? undefined : CAUSES[code];
  if (cause === undefined) return err;
  return new StoreUnavailableError(`${cause} (${code}: ${(err as Error).message})`);
}
