import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openPostgres } from "../src/db/postgres.ts";
import { openSqliteFile } from "../src/db/sqlite/file.ts";
import type { SqlStore } from "../src/db/store.ts";
import { WriteBatcher } from "../src/core/batcher.ts";
import { createLogger } from "../src/core/logger.ts";
import { systemClock } from "../src/runtime/clock.ts";
import { parseWebhookRules } from "../src/core/webhook-rules.ts";
import { postgresAvailable, TEST_DATABASE_URL, uniqueKey } from "./helpers/env.ts";

// One suite, two dialects: the embedded SQLite file (node:sqlite) and a real
// PostgreSQL server.
const silent = createLogger("error", () => {});
const pgUp = await postgresAvailable();
const sqliteDir = mkdtempSync(join(tmpdir(), "headcount-store-"));
afterAll(() => rmSync(sqliteDir, { recursive: true, force: true }));

const drivers: Array<[string, () => Promise<SqlStore>, boolean]> = [
  ["sqlite (a file in DATA_DIR)", () => openSqliteFile(sqliteDir), true],
  [
    "postgres.js (real server)",
    () =>
      openPostgres(
        TEST_DATABASE_URL,
        { poolMax: 8, idleTimeoutS: 5, maxLifetimeS: 60, connectTimeoutS: 5, acquireTimeoutMs: 5000 },
        silent,
        systemClock,
      ),
    pgUp,
  ],
];

describe.each(drivers)("store on %s", (_name, open, enabled) => {
  let store: SqlStore;
  beforeAll(async () => {
    if (enabled) store = await open();
  });
  afterAll(async () => {
    await store?.close();
  });

  it.skipIf(!enabled)("1,000 concurrent increments across 10 keys give exact totals and distinct visitor numbers", async () => {
    const batcher = new WriteBatcher(store, systemClock, silent, { commitTimeoutMs: 30_000 });
    const keys = Array.from({ length: 10 }, (_, i) => uniqueKey(`k${i}`));
    const perKey = new Map<string, number>();
    const visits = Array.from({ length: 1000 }, (_, i) => {
      // Uneven spread so keys end at different totals.
      const key = keys[(i * i) % 10]!;
      perKey.set(key, (perKey.get(key) ?? 0) + 1);
      return batcher.add(key);
    });
    const committed = await Promise.all(visits);

    const totals = await store.totals(keys);
    for (const key of keys) expect(totals.get(key) ?? 0).toBe(perKey.get(key) ?? 0);

    for (const key of keys) {
      const numbers = committed.filter((c) => c.key === key).map((c) => c.visitor).sort((a, b) => a - b);
      const n = perKey.get(key) ?? 0;
      expect(numbers).toEqual(Array.from({ length: n }, (_, i) => i + 1));
    }
  });

  it.skipIf(!enabled)("many stores racing on one key through the pool still add up", async () => {
    const key = uniqueKey("race");
    const results = await Promise.all(
      Array.from({ length: 50 }, () => store.increment(new Map([[key, 3]]))),
    );
    const seen = results.map((m) => m.get(key)!).sort((a, b) => a - b);
    expect(seen).toEqual(Array.from({ length: 50 }, (_, i) => (i + 1) * 3));
    expect((await store.totals([key])).get(key)).toBe(150);
  });

  it.skipIf(!enabled)("records visits per minute in the same statement as the total", async () => {
    const key = uniqueKey("history");
    await store.increment(new Map([[key, 4]]));
    await store.increment(new Map([[key, 6]]));
    const rows = await store.history(key, 60);
    const sum = rows.reduce((n, r) => n + r.visits, 0);
    expect(sum).toBe(10);
    expect(rows.length).toBeGreaterThanOrEqual(1);
  });

  it.skipIf(!enabled)("keeps keys with markup and unicode exactly as given", async () => {
    const key = uniqueKey(`<b>"x"</b>&é😀`);
    await store.increment(new Map([[key, 1]]));
    expect((await store.totals([key])).get(key)).toBe(1);
  });

  it.skipIf(!enabled)("setTotal sets outright and list pages through keys in order", async () => {
    const key = uniqueKey("admin");
    await store.increment(new Map([[key, 7]]));
    await store.setTotal(key, 2);
    expect((await store.totals([key])).get(key)).toBe(2);
    expect((await store.increment(new Map([[key, 1]]))).get(key)).toBe(3);
    await store.setTotal(`${key}/new`, 5);
    const page = await store.list(1000, 0);
    const mine = page.filter((r) => r.key.startsWith(key));
    expect(mine.map((r) => [r.key, r.total])).toEqual([[key, 3], [`${key}/new`, 5]]);
    expect(mine[0]!.updatedAt).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  });

  it.skipIf(!enabled)("ensureSetting keeps the first value written", async () => {
    const name = uniqueKey("setting");
    expect(await store.ensureSetting(name, "first")).toBe("first");
    expect(await store.ensureSetting(name, "second")).toBe("first");
  });

  it.skipIf(!enabled)("sumByPrefix takes % and _ literally and counts only keys that start with the prefix", async () => {
    const base = uniqueKey("prefix");
    await store.increment(
      new Map([
        [`${base}/a%b/x`, 2],
        [`${base}/a%b/y`, 3],
        [`${base}/aXb/z`, 5], // what LIKE 'a%b' would also match
        [`${base}/a_b`, 7],
        [`${base}/aZb`, 11], // what LIKE 'a_b' would also match
        [`${base}/é😀`, 13],
        [`${base}/é😀/more`, 17],
        [`${base}/f`, 19],
      ]),
    );
    expect(await store.sumByPrefix(`${base}/a%b/`)).toEqual({ total: 5, keys: 2 });
    expect(await store.sumByPrefix(`${base}/a_b`)).toEqual({ total: 7, keys: 1 });
    expect(await store.sumByPrefix(`${base}/é😀`)).toEqual({ total: 30, keys: 2 });
    expect(await store.sumByPrefix(base)).toEqual({ total: 77, keys: 8 });
    expect(await store.sumByPrefix(`${base}/nothing`)).toEqual({ total: 0, keys: 0 });
    const all = await store.sumByPrefix("");
    expect(all.keys).toBeGreaterThanOrEqual(8);
    expect(all.total).toBeGreaterThanOrEqual(77);
  });

  it.skipIf(!enabled)("top lists the highest totals first, ties in key order", async () => {
    const base = uniqueKey("top");
    // Above anything another suite counts, so the top three are these (set back to 0 after).
    const high = 8_000_000_000_000_000;
    try {
      await store.setTotal(`${base}/b`, high + 1);
      await store.setTotal(`${base}/a`, high + 1);
      await store.setTotal(`${base}/c`, high + 2);
      expect(await store.top(3)).toEqual([
        { key: `${base}/c`, total: high + 2 },
        { key: `${base}/a`, total: high + 1 },
        { key: `${base}/b`, total: high + 1 },
      ]);
    } finally {
      for (const k of ["a", "b", "c"]) await store.setTotal(`${base}/${k}`, 0);
    }
  });

  it.skipIf(!enabled)("milestone events are written with the increment that crossed them, once, and claimed, retried, delivered or given up", async () => {
    const key = uniqueKey("milestones");
    const [rule] = parseWebhookRules(JSON.stringify([{ key, every: 5, url: "http://127.0.0.1:9/m" }]));
    await store.registerWebhookRules([rule!]);
    store.fireMilestones([rule!]);
    try {
      await store.increment(new Map([[key, 12]])); // crosses 5 and 10
      await store.increment(new Map([[key, 1]])); // crosses nothing
      // Events of one commit share their due time; order them by milestone.
      const events = (await store.outbox.claim(10, 60_000, [rule!.id])).sort((a, b) => a.value - b.value);
      expect(events.map((e) => [e.key, e.kind, e.value, e.total, e.online, e.attempts])).toEqual([
        [key, "milestone", 5, 12, null, 1],
        [key, "milestone", 10, 12, null, 1],
      ]);
      expect(events[0]!.createdAt).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      expect(await store.outbox.claim(10, 60_000, [rule!.id])).toEqual([]); // locked while delivering

      await store.outbox.delivered(events[0]!.id);
      await store.outbox.failed(events[1]!.id, "HTTP 500", 0); // retry now
      const again = await store.outbox.claim(10, 60_000, [rule!.id]);
      expect(again.map((e) => [e.id, e.attempts])).toEqual([[events[1]!.id, 2]]);
      await store.outbox.failed(events[1]!.id, "HTTP 500 again", null); // dead
      expect(await store.outbox.claim(10, 60_000, [rule!.id])).toEqual([]);

      const dead = (await store.outbox.recentDead(1000)).find((d) => d.id === events[1]!.id);
      expect(dead).toEqual({ id: events[1]!.id, key, attempts: 2, lastError: "HTTP 500 again" });
      const stats = await store.outbox.summary();
      expect(stats.delivered).toBeGreaterThanOrEqual(1);
      expect(stats.dead).toBeGreaterThanOrEqual(1);
    } finally {
      store.fireMilestones([]);
    }
  });

  it.skipIf(!enabled)("an online threshold fires once until re-armed", async () => {
    const key = uniqueKey("online");
    const ruleId = `online-rule-${key}`;
    expect(await store.outbox.fireOnline(ruleId, key, 10, 12, 100)).toBe(true);
    expect(await store.outbox.fireOnline(ruleId, key, 10, 13, 101)).toBe(false);
    await store.outbox.rearm(ruleId, key);
    expect(await store.outbox.fireOnline(ruleId, key, 10, 11, 102)).toBe(true);
    const events = await store.outbox.claim(10, 60_000, [ruleId]);
    expect(events.map((e) => [e.kind, e.value, e.online, e.total]).sort()).toEqual([
      ["online", 10, 11, 102],
      ["online", 10, 12, 100],
    ]);
  });
});

// Two instances on one database with different WEBHOOK_RULES, as in a rolling
// deploy that changes them: neither may stop the other's rules from firing or
// take the other's events.
describe.skipIf(!pgUp)("webhook rules of instances sharing PostgreSQL", () => {
  const pool = { poolMax: 2, idleTimeoutS: 5, maxLifetimeS: 60, connectTimeoutS: 5, acquireTimeoutMs: 5000 };
  let a: SqlStore;
  let b: SqlStore;
  beforeAll(async () => {
    a = await openPostgres(TEST_DATABASE_URL, pool, silent, systemClock);
    b = await openPostgres(TEST_DATABASE_URL, pool, silent, systemClock);
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
  });

  it("each fires and claims only its own rules, whichever registered last", async () => {
    const key = uniqueKey("shared-rules");
    const [r1] = parseWebhookRules(JSON.stringify([{ key, milestones: [1, 2], url: "http://127.0.0.1:9/a" }]));
    const [r2] = parseWebhookRules(JSON.stringify([{ key, milestones: [1, 2], url: "http://127.0.0.1:9/b" }]));
    await a.registerWebhookRules([r1!]);
    a.fireMilestones([r1!]);
    await b.registerWebhookRules([r2!]); // after a's: must not remove a's rule
    b.fireMilestones([r2!]);

    await b.increment(new Map([[key, 1]])); // crosses 1: b's rule only
    await a.increment(new Map([[key, 1]])); // crosses 2: a's rule only

    const mine = (events: Awaited<ReturnType<SqlStore["outbox"]["claim"]>>) =>
      events.filter((e) => e.key === key).map((e) => [e.ruleId === r1!.id ? "a" : e.ruleId === r2!.id ? "b" : "other", e.value]);
    expect(mine(await b.outbox.claim(100, 60_000, [r2!.id]))).toEqual([["b", 1]]);
    expect(mine(await a.outbox.claim(100, 60_000, [r1!.id]))).toEqual([["a", 2]]);
    expect(await a.outbox.claim(100, 60_000, [])).toEqual([]);
  });
});
