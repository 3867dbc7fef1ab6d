import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { sql } from "drizzle-orm/sql/sql";
import { afterAll, describe, expect, it } from "vitest";
import { DATABASE_FILE, openSqliteFile } from "../src/db/sqlite/file.ts";
import { canChattr, canMount, immutable, mountTmpfs, snapshot, type Tmpfs } from "./helpers/mounts.ts";

// The SQLite file in DATA_DIR: how it is opened (pragmas) and what a bad
// directory gets: a typed error naming the path and the problem, and nothing
// in the directory changed.

const dirs: string[] = [];
const mounts: Tmpfs[] = [];
function freshDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "headcount-file-"));
  dirs.push(dir);
  return dir;
}
afterAll(() => {
  for (const m of mounts) m.unmount();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** Opening `dir` must fail with `problem`, naming `named`, and leave `dir` as it was. */
async function refused(dir: string, problem: string, named: string, saying: RegExp): Promise<void> {
  const before = snapshot(dir);
  const err = await openSqliteFile(dir).then(
    async (store) => {
      await store.close();
      return null;
    },
    (e: unknown) => e as Error & { problem?: string; path?: string },
  );
  expect(err, "the open was refused").not.toBeNull();
  expect(err!.name).toBe("DataDirError");
  expect(err!.problem).toBe(problem);
  expect(err!.message).toContain(named);
  expect(err!.message).toMatch(saying);
  expect(snapshot(dir), "nothing in the directory changed").toEqual(before);
}

describe("opening the SQLite file", () => {
  it("uses WAL (kept in the file), synchronous=FULL and an exclusive lock", async () => {
    const dir = freshDir();
    const store = await openSqliteFile(dir);
    const pragma = (name: string) => Object.values(store.executor.all(sql.raw(`pragma ${name}`))[0] ?? {})[0];
    expect(pragma("synchronous")).toBe(2); // FULL: per connection, so asked of the store's own
    expect(pragma("locking_mode")).toBe("exclusive");
    expect(pragma("journal_mode")).toBe("wal");
    await store.increment(new Map([["/", 1]]));
    await store.close();
    // journal_mode=wal is recorded in the database file: a second connection reads it back.
    const second = new DatabaseSync(join(dir, DATABASE_FILE));
    try {
      expect(second.prepare("pragma journal_mode").get()).toEqual({ journal_mode: "wal" });
      expect(second.prepare("select total from counters where key = '/'").get()).toEqual({ total: 1 });
    } finally {
      second.close();
    }
  });

  it("creates a missing directory, parents included, and migrates it", async () => {
    const dir = join(freshDir(), "a", "b", "data");
    const store = await openSqliteFile(dir);
    expect((await store.increment(new Map([["/x", 2]]))).get("/x")).toBe(2);
    await store.close();
  });
});

describe("a data directory that cannot be used", () => {
  it("DATA_DIR is a file", async () => {
    const parent = freshDir();
    const file = join(parent, "data");
    writeFileSync(file, "not a directory\n");
    const before = snapshot(parent);
    await expect(openSqliteFile(file)).rejects.toMatchObject({
      name: "DataDirError",
      problem: "not_a_directory",
      message: `data directory ${file} is not a directory`,
    });
    expect(snapshot(parent)).toEqual(before);
  });

  it("the database path holds a file that is not SQLite", async () => {
    const dir = freshDir();
    writeFileSync(join(dir, DATABASE_FILE), "hello, I am a text file\n".repeat(300));
    await refused(dir, "not_sqlite", join(dir, DATABASE_FILE), /is not a SQLite database/);
  });

  it("the database path holds another application's SQLite database", async () => {
    const dir = freshDir();
    const other = new DatabaseSync(join(dir, DATABASE_FILE));
    other.exec("create table photos (id integer primary key, name text); insert into photos (name) values ('cat.jpg')");
    other.close();
    await refused(dir, "foreign_database", join(dir, DATABASE_FILE), /is a SQLite database but not headcount's \(tables: photos\)/);
  });

  it.skipIf(!canMount)("the directory is on a read-only file system (root ignores mode bits, not this)", async () => {
    const ro = mountTmpfs("1m", true);
    mounts.push(ro);
    await refused(ro.dir, "not_writable", ro.dir, /is not writable \(EROFS\)/);
    await expect(openSqliteFile(join(ro.dir, "sub"))).rejects.toMatchObject({ name: "DataDirError", problem: "not_writable" });
  });

  it.skipIf(!canMount)("an existing database on a file system since mounted read-only", async () => {
    const fs = mountTmpfs("2m");
    mounts.push(fs);
    const store = await openSqliteFile(fs.dir);
    await store.increment(new Map([["/kept", 3]]));
    await store.close();
    fs.remount("ro");
    await refused(fs.dir, "not_writable", fs.dir, /EROFS/);
    fs.remount("rw");
    const again = await openSqliteFile(fs.dir);
    expect((await again.totals(["/kept"])).get("/kept")).toBe(3);
    await again.close();
  });

  const chattrDir = freshDir();
  it.skipIf(!canChattr(chattrDir))("the database file is immutable", async () => {
    const store = await openSqliteFile(chattrDir);
    await store.close();
    const file = join(chattrDir, DATABASE_FILE);
    immutable([file], true);
    try {
      await refused(chattrDir, "not_writable", file, /database .* is not writable \(EPERM\)/);
    } finally {
      immutable([file], false);
    }
  });
});
