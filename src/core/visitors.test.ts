import { describe, expect, it } from "vitest";
import { WriteBatcher } from "./batcher.ts";
import type { DayStore, KeyCommit } from "./ports.ts";
import { FakeClock, FakeStore, silentLogger } from "./testing.ts";
import { daysBefore, SERVER_KEY, siteOf, utcDay, utf8Prefix, VisitorIds, type DayBatch } from "./visitors.ts";

// A readable stand-in for HMAC: the tests check what goes into the hash, not the hash.
const mac = (salt: string, message: string) => `${salt}|${message}`;

describe("visitor ids", () => {
  it("a site is the key up to its first slash; path keys are this server's one site", () => {
    expect(siteOf("/")).toBe("");
    expect(siteOf("/blog/a")).toBe("");
    expect(siteOf("example.com/blog")).toBe("example.com");
    expect(siteOf("signup")).toBe("signup");
  });

  it("keeps at most 512 bytes of a user agent, cut on a code point", () => {
    expect(utf8Prefix("abc", 512)).toBe("abc");
    expect(utf8Prefix("x".repeat(8192), 512)).toHaveLength(512);
    const emoji = "😀".repeat(200); // 4 bytes each
    expect(utf8Prefix(emoji, 10)).toBe("😀😀");
    expect(utf8Prefix(`a${"é".repeat(300)}`, 6)).toBe("aéé");
  });

  it("days are UTC", () => {
    expect(utcDay(Date.parse("2026-12-02T23:59:59.999Z"))).toBe("2026-12-02");
    expect(utcDay(Date.parse("2026-12-03T00:00:00Z"))).toBe("2026-12-03");
    expect(daysBefore("2026-03-01", 1)).toBe("2026-02-28");
  });

  it("hashes address, user agent and site under the day's salt, server-wide without the site; bots apart", async () => {
    const asked: string[] = [];
    const ids = new VisitorIds(mac, async (day) => (asked.push(day), `salt-${day}`));
    const person = { bot: false as const, address: "198.51.100.7", ua: "UA" };
    const b = await ids.batch("2026-12-02", [
      ["/a", person],
      ["/a", person],
      ["example.com/x", person],
      ["/a", { bot: true }],
    ]);
    expect(b.hashes.get("/a")).toEqual(["salt-2026-12-02|s\u0000\u0000198.51.100.7\u0000UA", "salt-2026-12-02|s\u0000\u0000198.51.100.7\u0000UA"]);
    expect(b.hashes.get("example.com/x")).toEqual(["salt-2026-12-02|s\u0000example.com\u0000198.51.100.7\u0000UA"]);
    expect(new Set(b.server)).toEqual(new Set(["salt-2026-12-02|a\u0000198.51.100.7\u0000UA"]));
    expect(b.bots).toEqual(new Map([["/a", 1]]));
    // One salt fetch per day, however many batches.
    await ids.batch("2026-12-02", [["/a", person]]);
    await ids.batch("2026-12-03", [["/a", person]]);
    expect(asked).toEqual(["2026-12-02", "2026-12-03"]);
  });

  it("a salt that could not be had is asked again by the next batch", async () => {
    let fail = true;
    const ids = new VisitorIds(mac, async () => {
      if (fail) throw new Error("down");
      return "s";
    });
    const person = { bot: false as const, address: "a", ua: "u" };
    await expect(ids.batch("2026-12-02", [["/", person]])).rejects.toThrow("down");
    fail = false;
    expect((await ids.batch("2026-12-02", [["/", person]])).server).toEqual(["s|a\u0000a\u0000u"]);
  });
});

describe("WriteBatcher with days", () => {
  it("a bot is no visit: its key's total is read, the day's bots grow, its number is 0; people are numbered without it", async () => {
    const store = new FakeStore({ "/": 10 });
    const batches: DayBatch[] = [];
    const withDays = Object.assign(store, { day: dayStoreOf(store, batches) });
    const clock = new FakeClock(Date.parse("2026-12-02T12:00:00Z"));
    const newDays: string[] = [];
    const seen: Array<[number, number]> = [];
    const batcher = new WriteBatcher(withDays, clock, silentLogger, {
      commitTimeoutMs: 1000,
      visitors: new VisitorIds(mac, async () => "salt"),
      onDay: (bots, fresh) => seen.push([bots, fresh]),
      onNewDay: (d) => newDays.push(d),
    });
    const person = { bot: false as const, address: "198.51.100.7", ua: "UA" };
    const [a, bot, b] = await Promise.all([batcher.add("/", person), batcher.add("/", { bot: true }), batcher.add("/", person)]);
    expect(a).toEqual({ key: "/", total: 12, visitor: 11, today: { day: "2026-12-02", visitors: 1, bots: 1 } });
    expect(bot).toEqual({ key: "/", total: 12, visitor: 0, today: { day: "2026-12-02", visitors: 1, bots: 1 } });
    expect(b.visitor).toBe(12);
    expect(store.calls).toEqual([{ "/": 2 }]);
    // Bots only: nothing is written to the totals.
    expect(await batcher.add("/bots-only", { bot: true })).toMatchObject({ total: 0, visitor: 0, today: { visitors: 0, bots: 1 } });
    expect(store.calls).toEqual([{ "/": 2 }]);
    expect(seen).toEqual([[1, 1], [1, 0]]);
    clock.advance(12 * 3600_000);
    await batcher.add("/", person);
    expect(newDays).toEqual(["2026-12-02", "2026-12-03"]);
    expect(batches.at(-1)!.day).toBe("2026-12-03");
  });
});

/** Days for a FakeStore: distinct hashes per key and day, kept in memory; every batch recorded. */
function dayStoreOf(store: FakeStore, batches: DayBatch[]): DayStore {
  const seen = new Map<string, Set<string>>();
  const days = new Map<string, { visits: number; bots: number }>();
  return {
    async commit(counts, batch) {
      batches.push(batch);
      const totals = counts.size > 0 ? await store.increment(counts) : new Map<string, number>();
      const out = new Map<string, KeyCommit>();
      for (const key of new Set([...counts.keys(), ...batch.hashes.keys(), ...batch.bots.keys(), SERVER_KEY])) {
        const id = `${key} ${batch.day}`;
        const set = seen.get(id) ?? new Set<string>();
        seen.set(id, set);
        for (const h of key === SERVER_KEY ? batch.server : (batch.hashes.get(key) ?? [])) set.add(h);
        const d = days.get(id) ?? { visits: 0, bots: 0 };
        d.visits += counts.get(key) ?? 0;
        d.bots += batch.bots.get(key) ?? 0;
        days.set(id, d);
        out.set(key, { total: totals.get(key) ?? store.data.get(key) ?? 0, visitors: set.size, bots: d.bots });
      }
      return out;
    },
    today: async () => new Map(),
    salt: async (_d, c) => c,
    rollUp: async () => 0,
    daily: async () => [],
    hashCount: async () => 0,
  };
}
