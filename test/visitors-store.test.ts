import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Hub, loopFanout } from "../src/core/hub.ts";
import { createLogger } from "../src/core/logger.ts";
import { FakeClock, fakeSigner } from "../src/core/testing.ts";
import { SERVER_KEY, VisitorIds, type DayBatch } from "../src/core/visitors.ts";
import { visitorMac } from "../src/runtime/signer.ts";
import { openPostgres } from "../src/db/postgres.ts";
import { openSqliteFile } from "../src/db/sqlite/file.ts";
import type { SqlStore } from "../src/db/store.ts";
import { systemClock } from "../src/runtime/clock.ts";
import { BROWSER_UA, postgresAvailable, uniqueKey } from "./helpers/env.ts";
import { privateDatabase } from "./helpers/private-database.ts";

// Visitors per day on both stores (issue 13): hashes counted once per key and
// day in the statement that adds the visits, bots apart, exact for hundreds of
// thousands of visitors, and a roll-up that leaves only the daily rows.
const silent = createLogger("error", () => {});
const pgUp = await postgresAvailable();
const dir = mkdtempSync(join(tmpdir(), "headcount-visitors-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// A PostgreSQL database of this file's own: the days here are long past, and
// every server another suite starts on the shared database prunes daily rows
// past HISTORY_RETENTION_DAYS (and rolls up past days' hashes) at start.
const pgUrl = pgUp ? privateDatabase("headcount_visitors") : undefined;

const drivers: Array<[string, () => Promise<SqlStore>, boolean]> = [
  ["sqlite", () => openSqliteFile(dir), true],
  [
    "postgres",
    () => openPostgres(pgUrl!.href, { poolMax: 4, idleTimeoutS: 5, maxLifetimeS: 60, connectTimeoutS: 5, acquireTimeoutMs: 5000 }, silent, systemClock),
    pgUp,
  ],
];

const batch = (day: string, hashes: Record<string, string[]>, server: string[], bots: Record<string, number> = {}): DayBatch => ({
  day,
  hashes: new Map(Object.entries(hashes)),
  server,
  bots: new Map(Object.entries(bots)),
});

/** A day of the past no other test writes, so the roll-up here touches only this test's rows. */
const pastDay = (n: number) => `19${String(70 + n).padStart(2, "0")}-01-01`;

describe.each(drivers)("visitors on %s", (_name, open, enabled) => {
  let store: SqlStore;
  beforeAll(async () => {
    if (enabled) store = await open();
  });
  afterAll(async () => {
    await store?.close();
  });

  it.skipIf(!enabled)("counts a hash once per key and day, visits every time, bots apart, and the server's own distinct visitors", async () => {
    const a = uniqueKey("va");
    const b = uniqueKey("vb");
    const day = pastDay(Math.floor(Math.random() * 20));
    let r = await store.day.commit(new Map([[a, 2]]), batch(day, { [a]: ["h1", "h1"] }, ["s1", "s1"]));
    expect(r.get(a)).toEqual({ total: 2, visitors: 1, bots: 0 });
    r = await store.day.commit(new Map([[a, 1], [b, 1]]), batch(day, { [a]: ["h2"], [b]: ["h1"] }, ["s2", "s1"], { b: 0, [b]: 3 }));
    expect(r.get(a)).toEqual({ total: 3, visitors: 2, bots: 0 });
    expect(r.get(b)).toEqual({ total: 1, visitors: 1, bots: 3 });
    // Bots only: no visit, the total is read, not written.
    r = await store.day.commit(new Map(), batch(day, {}, [], { [a]: 1 }));
    expect(r.get(a)).toEqual({ total: 3, visitors: 2, bots: 1 });
    expect((await store.totals([a])).get(a)).toBe(3);
    expect(await store.day.daily(a, day)).toEqual([{ day, visits: 3, visitors: 2, bots: 1 }]);
    // Bots alone on a key nobody has visited write no row for it (a crawler cannot create rows); the server's bots count them.
    const nobody = uniqueKey("vnobody");
    const serverDay = async () => (await store.day.daily(SERVER_KEY, day)).find((d) => d.day === day)!;
    const serverBots = (await serverDay()).bots;
    r = await store.day.commit(new Map(), batch(day, {}, [], { [nobody]: 2 }));
    expect(r.get(nobody)).toEqual({ total: 0, visitors: 0, bots: 0 });
    expect(await store.day.daily(nobody, day)).toEqual([]);
    expect((await store.totals([nobody])).has(nobody)).toBe(false);
    expect((await serverDay()).bots).toBe(serverBots + 2);
    expect((await store.day.today([a, b], day)).get(b)).toEqual({ visits: 1, visitors: 1, bots: 3 });
    // Server-wide: distinct over all keys (s1 twice is one), not a sum of the keys' visitors.
    expect((await serverDay()).visitors).toBeGreaterThanOrEqual(2);
  });

  it.skipIf(!enabled)("one salt per day, whoever asks first", async () => {
    const day = pastDay(30 + Math.floor(Math.random() * 20));
    const first = await store.day.salt(day, `one-${Math.random()}`);
    expect(await store.day.salt(day, "two")).toBe(first);
  });

  // 200,000 in `npm test`; HEADCOUNT_MANY_VISITORS=1000000 shows the million the design promises (README "Visitors and bots").
  const many = Number(process.env.HEADCOUNT_MANY_VISITORS ?? 200_000);
  it.skipIf(!enabled)(
    `is exact for ${many.toLocaleString("en")} distinct visitors of one key in a day, and the roll-up leaves only the daily row`,
    async () => {
      const key = uniqueKey("many");
      const day = "1960-06-15";
      await store.day.salt(day, "salt-of-the-day");
      const per = 10_000;
      for (let i = 0; i < many / per; i++) {
        const hashes = Array.from({ length: per }, (_, j) => (i * per + j).toString(16).padStart(16, "0"));
        // Half of each batch again: repeats are no new visitors.
        const again = hashes.slice(0, per / 2);
        await store.day.commit(new Map([[key, per + again.length]]), batch(day, { [key]: [...hashes, ...again] }, []));
      }
      expect(await store.day.daily(key, day)).toEqual([{ day, visits: many * 1.5, visitors: many, bots: 0 }]);
      expect(await store.day.hashCount(day)).toBe(many);
      const deleted = await store.day.rollUp("1960-06-16", "1900-01-01");
      expect(deleted).toBeGreaterThanOrEqual(many);
      expect(await store.day.hashCount(day)).toBe(0);
      // The salt went with the day: asking again makes a new one.
      expect(await store.day.salt(day, "a-new-salt")).toBe("a-new-salt");
      expect(await store.day.daily(key, day)).toEqual([{ day, visits: many * 1.5, visitors: many, bots: 0 }]);
      await store.day.rollUp("1960-06-16", "1900-01-01");
    },
    30_000 + many / 10,
  );

  it.skipIf(!enabled)("just after midnight (injected clock) the days before are rolled up: yesterday's hashes and salt go, its counts stay", async () => {
    const clock = new FakeClock(Date.parse("1980-03-01T23:59:00Z"));
    const visitors = new VisitorIds(visitorMac, (day) => store.day.salt(day, `salt-${Math.random()}`));
    const hub = new Hub(
      { store, fanout: loopFanout, clock, signer: fakeSigner(), log: silent, visitors },
      { broadcastIntervalMs: 50, commitTimeoutMs: 10_000, resumeTtlS: 60, messageBurst: 10, messagePerSec: 1, historyRetentionDays: 90 },
    );
    const key = uniqueKey("rollup");
    const who = { bot: false as const, address: "198.51.100.1", ua: BROWSER_UA };
    expect((await hub.count(key, who)).today).toEqual({ day: "1980-03-01", visitors: 1, bots: 0 });
    expect((await hub.count(key, who)).today).toEqual({ day: "1980-03-01", visitors: 1, bots: 0 });
    expect(await store.day.hashCount("1980-03-01")).toBeGreaterThanOrEqual(2); // the key's and the server's
    const salt = await store.day.salt("1980-03-01", "not this one");
    expect(salt).not.toBe("not this one");

    clock.advance(2 * 60_000); // past midnight UTC, with no visit: an idle server rolls up all the same
    await expect.poll(() => store.day.hashCount("1980-03-01"), { timeout: 5000 }).toBe(0);
    expect(await store.day.salt("1980-03-01", "a new one")).toBe("a new one"); // the old salt is gone
    // A new day, a new salt: the same person is the day's first visitor again.
    expect((await hub.count(key, who)).today).toEqual({ day: "1980-03-02", visitors: 1, bots: 0 });
    expect(await store.day.daily(key, "1980-01-01")).toEqual([
      { day: "1980-03-01", visits: 2, visitors: 1, bots: 0 },
      { day: "1980-03-02", visits: 1, visitors: 1, bots: 0 },
    ]);
    await store.day.rollUp("1980-03-03", "1900-01-01");
    hub.closeAll();
  });
});
