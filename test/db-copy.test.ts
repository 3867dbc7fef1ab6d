import { spawn } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { sql } from "drizzle-orm/sql/sql";
import { afterAll, describe, expect, it } from "vitest";
import { copyStore } from "../src/db/copy.ts";
import { openSqliteCopyEndpoint } from "../src/db/sqlite/copy.ts";
import { DATABASE_FILE, openSqliteFile } from "../src/db/sqlite/file.ts";
import { postgresAvailable } from "./helpers/env.ts";
import { privateDatabase } from "./helpers/private-database.ts";

// `npm run db:copy` as a real process: SQLite → PostgreSQL → SQLite with
// exact totals, times, history and settings; refusals; bad arguments.

const ROOT = decodeURIComponent(new URL("..", import.meta.url).pathname).replace(/\/$/, "");
const pgUp = await postgresAvailable();

const dirs: string[] = [];
function freshDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "headcount-copy-"));
  dirs.push(dir);
  return dir;
}

function copy(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const proc = spawn(join(ROOT, "node_modules/.bin/node"), ["src/runtime/db-cli.ts", "db:copy", ...args], { cwd: ROOT });
    let stdout = "";
    let stderr = "";
    proc.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    proc.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    proc.on("exit", (code) => resolve({ code, stdout, stderr }));
  });
}

/** Everything a copy carries, read straight from a data directory's file. */
function contents(dir: string) {
  const db = new DatabaseSync(join(dir, DATABASE_FILE), { readOnly: true });
  try {
    return {
      counters: db.prepare("select key, total, updated_at from counters order by key").all(),
      history: db.prepare("select key, minute, visits from visits_per_minute order by key, minute").all(),
      daily: db.prepare("select key, day, visits, visitors, bots from daily order by key, day").all(),
      // Never copied: the day's visitor hashes and salts stay in the database they were made in.
      hashes: db.prepare("select count(*) as n from visitor_hashes").get(),
      settings: db.prepare("select name, value from settings order by name").all(),
    };
  } finally {
    db.close();
  }
}

/** A data directory with counters, history over several minutes, daily visitors (the day's hashes too), and a resume secret. */
async function seeded(keys: number): Promise<string> {
  const dir = freshDir();
  const store = await openSqliteFile(dir);
  await store.ensureSetting("resume_secret", "the-secret-that-signs-tokens");
  await store.increment(new Map(Array.from({ length: keys }, (_, i) => [`/page/${i}`, i + 1])));
  await store.increment(new Map([["/page/0", 10], ["/odd key ü%_", 3]]));
  await store.setTotal("/admin-set", 1234567);
  // History from earlier minutes, as a server running for a while leaves it.
  store.executor.run(sql`insert into visits_per_minute (key, minute, visits) values ('/page/1', 1700000040000, 4), ('/page/1', 1700000100000, 9)`);
  // Days of visitors for a few keys and the server, and one day's hashes, which a copy leaves behind.
  for (const day of ["2026-11-30", "2026-12-01", "2026-12-02"]) {
    await store.day.commit(new Map(), {
      day,
      hashes: new Map([["/page/1", ["aaaa", "bbbb", "aaaa"]]]),
      server: ["cccc", "dddd"],
      // Bots on a visited key (bots alone on a key nobody visited write no row for it).
      bots: new Map([["/page/2", 2]]),
    });
  }
  await store.close();
  return dir;
}

afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe("db:copy arguments", () => {
  it.each([
    [[], /--from is required/],
    [["--from", "/tmp/x"], /--to is required/],
    [["--from", "/tmp/x", "--to", "/tmp/x"], /the same store/],
    [["--from", "/tmp/x", "--to", "/tmp/y", "--bogus"], /Unknown option '--bogus'/],
    [["/tmp/x", "/tmp/y"], /Unexpected argument/],
  ])("%j exits 2 with a usage message", async (args, problem) => {
    const r = await copy(...args);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(problem);
    expect(r.stderr).toContain("usage: npm run db:copy -- --from");
  });

  it("refuses a source data directory a server holds, with the lock message", async () => {
    const dir = await seeded(3);
    const held = await openSqliteFile(dir);
    try {
      const r = await copy("--from", dir, "--to", freshDir());
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(new RegExp(`data directory ${dir} is locked by another headcount process \\(pid ${process.pid}\\)`));
    } finally {
      await held.close();
    }
  });

  it("refuses a source directory with no database, creating nothing", async () => {
    const dir = join(freshDir(), "nothing-here");
    const r = await copy("--from", dir, "--to", freshDir());
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/holds no headcount database/);
    expect(existsSync(dir)).toBe(false);
  });
});

describe("copying between data directories", () => {
  it("pages through keys and history (batch smaller than the data) with exact results", async () => {
    const from = await seeded(40);
    const expected = contents(from);
    const to = freshDir();
    const source = await openSqliteCopyEndpoint(from, "source");
    const target = await openSqliteCopyEndpoint(to, "target");
    try {
      const n = await copyStore(source, target, { batch: 7 });
      // History rows: one per key for the current minute (two if the seeding crossed a minute) and two earlier ones.
      expect(n).toEqual({ counters: 42, history: expected.history.length, daily: 9, settings: 1 });
    } finally {
      await target.close();
      await source.close();
    }
    expect(contents(to)).toEqual({ ...expected, hashes: { n: 0 } });
    expect(expected.hashes).toEqual({ n: 12 });
  });

  it("--force replaces the keys the source has and keeps the target's others", async () => {
    const from = await seeded(2);
    const to = freshDir();
    const store = await openSqliteFile(to);
    await store.setTotal("/page/0", 999);
    await store.setTotal("/only-in-target", 7);
    await store.close();

    const refused = await copy("--from", from, "--to", to);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/already has 2 counters; pass --force/);
    expect(contents(to).counters.map((r) => [r.key, r.total])).toEqual([["/only-in-target", 7], ["/page/0", 999]]);

    const forced = await copy("--from", from, "--to", to, "--force");
    expect(forced.code, forced.stderr).toBe(0);
    const totals = Object.fromEntries(contents(to).counters.map((r) => [r.key, r.total]));
    expect(totals).toEqual({ "/only-in-target": 7, "/page/0": 11, "/page/1": 2, "/odd key ü%_": 3, "/admin-set": 1234567 });
  });
});


describe.skipIf(!pgUp)("copying through PostgreSQL", () => {
  // A database of its own: the shared test database has other suites' counters.
  const url = privateDatabase("headcount_copy");

  it("SQLite → PostgreSQL → SQLite keeps totals, times, history and settings exactly; a second copy needs --force", async () => {
    const from = await seeded(25);
    const there = await copy("--from", from, "--to", url.href);
    expect(there.code, there.stderr).toBe(0);
    const rows = contents(from).history.length;
    expect(there.stdout).toMatch(new RegExp(`^copied 27 counters, ${rows} history rows, 9 daily rows, 1 settings from `));

    const again = await copy("--from", from, "--to", url.href);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/already has 27 counters; pass --force/);

    const back = freshDir();
    const home = await copy("--from", url.href, "--to", back);
    expect(home.code, home.stderr).toBe(0);
    expect(home.stdout).toMatch(new RegExp(`^copied 27 counters, ${rows} history rows, 9 daily rows, 1 settings `));
    expect(contents(back)).toEqual({ ...contents(from), hashes: { n: 0 } });
  });
});
