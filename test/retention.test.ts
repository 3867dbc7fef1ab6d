import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import postgres from "postgres";
import { afterAll, describe, expect, it } from "vitest";
import { DATABASE_FILE, openSqliteFile } from "../src/db/sqlite/file.ts";
import { privateDatabase } from "./helpers/private-database.ts";
import { freshDataDir, startServer, type RunningServer, type RuntimeName } from "./helpers/server.ts";
import { pgUp } from "./helpers/store-env.ts";

// HISTORY_RETENTION_DAYS as a running server applies it: history past the
// retention, there before the server started, is pruned in the background at
// start (in batches: core/retention.ts, test/store-maintenance.test.ts), while
// recent history stays. On the embedded store of Node, Bun and Deno, and on
// PostgreSQL (a database of its own).

const TOKEN = "retention-admin-token-0123456789";
const DAY = 86_400_000;
const OLD_ROWS = 120;

async function metric(s: RunningServer, name: string): Promise<number> {
  const text = await (await fetch(`${s.url}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } })).text();
  return Number(text.split("\n").find((l) => l.startsWith(`${name} `))?.split(" ")[1] ?? NaN);
}

async function history(s: RunningServer, key: string): Promise<number> {
  const res = await fetch(`${s.url}/api/history?key=${encodeURIComponent(key)}&minutes=1440`, { headers: { authorization: `Bearer ${TOKEN}` } });
  const body = (await res.json()) as Array<{ visits: number }> | { points: Array<{ visits: number }> };
  const points = Array.isArray(body) ? body : body.points;
  return points.reduce((n, p) => n + p.visits, 0);
}

const servers: RunningServer[] = [];
afterAll(async () => {
  await Promise.all(servers.map((s) => s.stop()));
});

for (const runtime of ["node", "bun", "deno"] as RuntimeName[]) {
  it(`${runtime}, embedded: history older than HISTORY_RETENTION_DAYS=30 is pruned at start; the last day's stays`, async () => {
    const dir = freshDataDir();
    await (await openSqliteFile(dir)).close();
    const db = new DatabaseSync(join(dir, DATABASE_FILE));
    const now = Date.now();
    const minute = now - (now % 60_000);
    const insert = db.prepare("insert into visits_per_minute (key, minute, visits) values (?, ?, 1)");
    for (let i = 0; i < OLD_ROWS; i++) insert.run("/old", minute - 31 * DAY - i * 60_000);
    for (let i = 0; i < 5; i++) insert.run("/recent", minute - i * 60_000);
    db.close();
    const s = await startServer({ runtime, dataDir: dir, env: { HISTORY_RETENTION_DAYS: "30", ADMIN_TOKEN: TOKEN } });
    servers.push(s);
    await expect.poll(() => metric(s, "headcount_history_pruned_total")).toBe(OLD_ROWS);
    expect(await history(s, "/recent")).toBe(5);
  });
}

describe.skipIf(!pgUp)("on PostgreSQL", () => {
  const url = privateDatabase("headcount_retention");
  // Registered after the database's hooks, so it runs before the drop.
  afterAll(async () => {
    await Promise.all(servers.map((s) => s.stop()));
  });

  it("node: history older than HISTORY_RETENTION_DAYS=30 is pruned at start; recent history stays", async () => {
    // The first start migrates; the rows go in behind it; the second start prunes them.
    const first = await startServer({ env: { DATABASE_URL: url.href } });
    await first.stop();
    const sql = postgres(url.href, { max: 1, onnotice: () => {} });
    await sql`insert into visits_per_minute (key, minute, visits)
      select '/old', date_trunc('minute', now()) - interval '31 days' - make_interval(mins => i), 1 from generate_series(0, ${OLD_ROWS - 1}) i`;
    await sql`insert into visits_per_minute (key, minute, visits)
      select '/recent', date_trunc('minute', now()) - make_interval(mins => i), 1 from generate_series(0, 4) i`;
    const s = await startServer({ env: { DATABASE_URL: url.href, HISTORY_RETENTION_DAYS: "30", ADMIN_TOKEN: TOKEN } });
    servers.push(s);
    await expect.poll(() => metric(s, "headcount_history_pruned_total")).toBe(OLD_ROWS);
    expect(Number((await sql`select count(*) from visits_per_minute where key = '/old'`)[0]!.count)).toBe(0);
    expect(await history(s, "/recent")).toBe(5);
    await sql.end();
  });
});
