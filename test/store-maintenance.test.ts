import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { createLogger } from "../src/core/logger.ts";
import { DAY_MS, HistoryRetention } from "../src/core/retention.ts";
import { openPostgres } from "../src/db/postgres.ts";
import { openSqliteFile } from "../src/db/sqlite/file.ts";
import type { SqlStore } from "../src/db/store.ts";
import { systemClock } from "../src/runtime/clock.ts";
import { postgresAvailable, TEST_DATABASE_URL, uniqueKey } from "./helpers/env.ts";

// What keeps the stores bounded (MAX_KEYS, HISTORY_RETENTION_DAYS), on both
// dialects: counting keys, deleting one, and pruning old per-minute history
// in bounded batches (old rows go, recent ones stay).

const silent = createLogger("error", () => {});
const pgUp = await postgresAvailable();
const sqliteDir = mkdtempSync(join(tmpdir(), "headcount-maint-"));
afterAll(() => rmSync(sqliteDir, { recursive: true, force: true }));
const MINUTE = 60_000;

/** Writes `visits` to `key`'s history at `at` (epoch ms) the way each store can be made to. */
type Plant = (store: SqlStore, key: string, at: number, visits: number) => Promise<void>;

// The SQLite store stamps history with Date.now(): the clock is moved for the increment.
const plantSqlite: Plant = async (store, key, at, visits) => {
  vi.useFakeTimers({ toFake: ["Date"], now: at });
  try {
    await store.increment(new Map([[key, visits]]));
  } finally {
    vi.useRealTimers();
  }
};

// PostgreSQL stamps it with now(): the row is written as it would have been then.
const pg = pgUp ? postgres(TEST_DATABASE_URL, { max: 1, onnotice: () => {} }) : null;
afterAll(async () => pg?.end({ timeout: 5 }));
const plantPg: Plant = async (_store, key, at, visits) => {
  await pg!`insert into counters (key, total) values (${key}, ${visits})
    on conflict (key) do update set total = counters.total + excluded.total`;
  const minute = new Date(at - (at % MINUTE));
  await pg!`insert into visits_per_minute (key, minute, visits) values (${key}, ${minute}, ${visits})
    on conflict (key, minute) do update set visits = visits_per_minute.visits + excluded.visits`;
};

const drivers: Array<[string, () => Promise<SqlStore>, Plant, boolean]> = [
  ["sqlite (a file in DATA_DIR)", () => openSqliteFile(sqliteDir), plantSqlite, true],
  [
    "postgres.js (real server)",
    () => openPostgres(TEST_DATABASE_URL, { poolMax: 4, idleTimeoutS: 5, maxLifetimeS: 60, connectTimeoutS: 5, acquireTimeoutMs: 5000 }, silent, systemClock),
    plantPg,
    pgUp,
  ],
];

describe.each(drivers)("store maintenance on %s", (_name, open, plant, enabled) => {
  let store: SqlStore;
  beforeAll(async () => {
    if (enabled) store = await open();
  });
  afterAll(async () => {
    await store?.close();
  });

  it.skipIf(!enabled)("prunes history older than the cutoff in batches of at most the limit, and keeps what is recent", async () => {
    const key = uniqueKey("retention");
    const now = Date.now();
    // 23 old minutes (91 to 91 days + 22 minutes ago) and 3 recent ones (89 days, 1 day, now).
    for (let i = 0; i < 23; i++) await plant(store, key, now - 91 * DAY_MS - i * MINUTE, 1);
    for (const age of [89 * DAY_MS, DAY_MS, 0]) await plant(store, key, now - age, 2);
    const all = async () => (await store.history(key, 100 * 24 * 60)).filter((r) => r.visits > 0);
    expect((await all()).length).toBe(26);

    const before = now - 90 * DAY_MS;
    const batches: number[] = [];
    for (;;) {
      const n = await store.pruneHistory(before, 5);
      batches.push(n);
      if (n < 5) break;
    }
    // Other suites may have old rows in the shared database too: every batch is bounded, and ours are all gone.
    expect(Math.max(...batches)).toBeLessThanOrEqual(5);
    expect(batches.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(23);
    expect(batches.length).toBeGreaterThanOrEqual(5);
    const left = await all();
    expect(left.map((r) => r.visits)).toEqual([2, 2, 2]);
    expect(left.every((r) => r.minute >= before - MINUTE)).toBe(true);
    // The total is not history: it stays.
    expect((await store.totals([key])).get(key)).toBe(29);
  });

  it.skipIf(!enabled)("HistoryRetention runs batches until one comes back short, with pauses between them", async () => {
    const key = uniqueKey("retention-run");
    const now = Date.now();
    for (let i = 0; i < 12; i++) await plant(store, key, now - 100 * DAY_MS - i * MINUTE, 1);
    await plant(store, key, now, 1);
    const sizes: number[] = [];
    const retention = new HistoryRetention(
      async (before, limit) => {
        const n = await store.pruneHistory(before, limit);
        sizes.push(n);
        return n;
      },
      systemClock,
      silent,
      { days: 90, batch: 4, intervalMs: 3_600_000, pauseMs: 1 },
    );
    const deleted = await retention.run();
    expect(deleted).toBeGreaterThanOrEqual(12);
    expect(sizes.every((n) => n <= 4)).toBe(true);
    expect(sizes.at(-1)).toBeLessThan(4);
    expect((await store.history(key, 200 * 24 * 60)).length).toBe(1);
    await retention.stop();
  });

  it.skipIf(!enabled)("countKeys counts keys; deleteKey removes a key and its history, once", async () => {
    const key = uniqueKey("delete");
    const before = await store.countKeys();
    await store.increment(new Map([[key, 3], [`${key}/other`, 1]]));
    expect(await store.countKeys()).toBe(before + 2);
    expect(await store.deleteKey(key)).toBe(true);
    expect(await store.deleteKey(key)).toBe(false);
    expect((await store.totals([key, `${key}/other`])).has(key)).toBe(false);
    expect(await store.history(key, 60)).toEqual([]);
    expect((await store.totals([`${key}/other`])).get(`${key}/other`)).toBe(1);
    expect(await store.countKeys()).toBe(before + 1);
  });
});
