import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { drizzle } from "drizzle-orm/durable-sqlite";
import { migrate as drizzleDurableMigrate } from "drizzle-orm/durable-sqlite/migrator";
import { readMigrationFiles } from "drizzle-orm/migrator";
import { sql } from "drizzle-orm/sql/sql";
import { afterAll, describe, expect, it } from "vitest";
import { BUNDLES, readMigrations, renderBundle, ROOT } from "../src/db/bundle-migrations.ts";
import { DATABASE_FILE, openSqliteFile } from "../src/db/sqlite/file.ts";
import { migrations } from "../src/db/sqlite/migrations.gen.ts";

// Migrations reach every build as generated modules (src/db/bundle-migrations.ts).
// These keep the modules in step with drizzle-kit's folders and check that
// the SQLite migrator agrees with drizzle's own bookkeeping.

const migrationsRows = sql`select hash, created_at from __drizzle_migrations order by created_at`;
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe("bundled migrations", () => {
  it.each(BUNDLES.map((b) => [b.module, b] as const))("%s is what `npm run db:generate` writes from its folder", (_name, bundle) => {
    const committed = readFileSync(join(ROOT, bundle.module), "utf8");
    expect(committed, `${bundle.module} is stale: run npm run db:generate`).toBe(renderBundle(bundle));
  });

  it.each(BUNDLES.map((b) => [b.folder, b] as const))("%s/ is read exactly as drizzle's readMigrationFiles reads it", (_name, bundle) => {
    const folder = join(ROOT, bundle.folder);
    expect(readMigrations(folder)).toEqual(readMigrationFiles({ migrationsFolder: folder }));
  });
});

/**
 * The two calls drizzle-orm/durable-sqlite makes of a Durable Object's
 * storage (sql.exec and transactionSync), over node:sqlite, so drizzle's own
 * migrator can set up a database the way it set up deployed objects.
 */
function durableStorageOver(db: DatabaseSync) {
  // Like the real one, exec runs the statement at once, whether or not the cursor is read.
  const cursor = (query: string, params: unknown[]) => {
    const statement = db.prepare(query);
    const args = params as string[];
    const rows = statement.columns().length > 0 ? statement.all(...args) : (statement.run(...args), []);
    return {
      toArray: () => rows,
      raw: () => ({ toArray: () => rows.map((row) => Object.values(row)) }),
      next: () => ({ value: rows[0], done: rows.length === 0 }),
    };
  };
  return {
    sql: { exec: (query: string, ...params: unknown[]) => cursor(query, params) },
    transactionSync<T>(fn: () => T): T {
      db.exec("begin");
      try {
        const result = fn();
        db.exec("commit");
        return result;
      } catch (err) {
        db.exec("rollback");
        throw err;
      }
    },
  };
}

describe("the SQLite migrator", () => {
  it("recognises a database drizzle's durable-sqlite migrator set up, and applies nothing twice", async () => {
    const dir = mkdtempSync(join(tmpdir(), "headcount-legacy-do-"));
    dirs.push(dir);
    const folder = join(ROOT, "drizzle-sqlite");
    const journal = JSON.parse(readFileSync(join(folder, "meta", "_journal.json"), "utf8")) as {
      entries: Array<{ idx: number; tag: string; when: number; breakpoints: boolean }>;
    };
    const legacy = {
      journal,
      migrations: Object.fromEntries(
        journal.entries.map((e) => [`m${String(e.idx).padStart(4, "0")}`, readFileSync(join(folder, `${e.tag}.sql`), "utf8")]),
      ),
    };
    const raw = new DatabaseSync(join(dir, DATABASE_FILE));
    // drizzle's types want Cloudflare's DurableObjectStorage; it uses only these two members.
    await drizzleDurableMigrate(drizzle(durableStorageOver(raw) as never), legacy);
    raw.exec("insert into counters (key, total, updated_at) values ('/legacy', 41, 0)");
    raw.close();

    const store = await openSqliteFile(dir); // would fail with "table already exists" if it re-ran them
    try {
      expect((await store.increment(new Map([["/legacy", 1]]))).get("/legacy")).toBe(42);
      const rows = store.executor.all(migrationsRows);
      expect(rows.map((r) => Number(r.created_at))).toEqual(migrations.map((m) => m.folderMillis));
    } finally {
      await store.close();
    }
  });

  it("migrates an empty directory once and records drizzle's hashes", async () => {
    const dir = mkdtempSync(join(tmpdir(), "headcount-fresh-"));
    dirs.push(dir);
    for (let i = 0; i < 2; i++) {
      const store = await openSqliteFile(dir);
      const rows = store.executor.all(migrationsRows);
      expect(rows.map((r) => [String(r.hash), Number(r.created_at)])).toEqual(migrations.map((m) => [m.hash, m.folderMillis]));
      await store.close();
    }
  });
});

describe("npm run db:migrate", () => {
  const migrateCli = (env: Record<string, string>) => {
    try {
      const stdout = execFileSync(join(ROOT, "node_modules/.bin/node"), ["src/db/migrate-cli.ts"], {
        cwd: ROOT,
        env: { PATH: process.env.PATH ?? "", ...env },
        stdio: ["ignore", "pipe", "pipe"],
      });
      return { code: 0, out: stdout.toString() };
    } catch (err) {
      const e = err as { status: number; stderr: Buffer };
      return { code: e.status, out: e.stderr.toString() };
    }
  };

  it("migrates DATA_DIR when DATABASE_URL is not set, and says why when it cannot", () => {
    const dir = mkdtempSync(join(tmpdir(), "headcount-migrate-"));
    dirs.push(dir);
    expect(migrateCli({ DATA_DIR: join(dir, "data") })).toEqual({ code: 0, out: `migrated ${join(dir, "data", DATABASE_FILE)}\n` });
    const db = new DatabaseSync(join(dir, "data", DATABASE_FILE), { readOnly: true });
    expect(db.prepare("select count(*) as n from __drizzle_migrations").get()).toEqual({ n: migrations.length });
    db.close();

    writeFileSync(join(dir, "file"), "");
    const bad = migrateCli({ DATA_DIR: join(dir, "file") });
    expect(bad.code).toBe(1);
    expect(bad.out).toContain(`data directory ${join(dir, "file")} is not a directory`);
  });
});
