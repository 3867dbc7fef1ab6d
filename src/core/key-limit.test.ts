import { describe, expect, it } from "vitest";
import { KeyLimit, KeyLimitError, keyCountingStore } from "./key-limit.ts";
import type { CounterStore } from "./ports.ts";

// MAX_KEYS bookkeeping without a database: a set stands for the store's keys.
function memoryStore(): CounterStore & { rows: Map<string, number> } {
  const rows = new Map<string, number>();
  return {
    rows,
    async increment(counts) {
      const out = new Map<string, number>();
      for (const [k, n] of counts) {
        rows.set(k, (rows.get(k) ?? 0) + n);
        out.set(k, rows.get(k)!);
      }
      return out;
    },
    async totals(keys) {
      return new Map(keys.filter((k) => rows.has(k)).map((k) => [k, rows.get(k)!]));
    },
    async ping() {},
    async close() {},
  };
}

function setup(max: number) {
  const inner = memoryStore();
  const lookups: string[] = [];
  const limit = new KeyLimit(max, async (key) => {
    lookups.push(key);
    return inner.rows.has(key);
  });
  const store = keyCountingStore(inner, limit);
  /** What the hub does per visit: reserve, commit, release. */
  const visit = async (key: string) => {
    const release = await limit.reserve(key);
    try {
      return (await store.increment(new Map([[key, 1]]))).get(key);
    } finally {
      release();
    }
  };
  return { inner, limit, store, lookups, visit };
}

describe("KeyLimit", () => {
  it("counts keys as commits create them, and refuses a new key at the cap while existing keys count", async () => {
    const { limit, visit, lookups, inner } = setup(2);
    await visit("a");
    await visit("a");
    await visit("b");
    expect(limit.count).toBe(2);
    expect(lookups).toEqual([]); // below the cap nothing is looked up
    await expect(visit("c")).rejects.toBeInstanceOf(KeyLimitError);
    expect(inner.rows.has("c")).toBe(false);
    expect(await visit("a")).toBe(3);
    expect(limit.refusals).toBe(1);
    expect(await limit.allows("c")).toBe(false);
    expect(await limit.allows("b")).toBe(true);
  });

  it("holds the line for new keys arriving together: places are reserved before their commits", async () => {
    const { limit, inner, visit } = setup(3);
    const results = await Promise.allSettled(["k1", "k2", "k3", "k4", "k5", "k1"].map(visit));
    expect(results.map((r) => r.status)).toEqual(["fulfilled", "fulfilled", "fulfilled", "rejected", "rejected", "fulfilled"]);
    expect(inner.rows.size).toBe(3);
    expect(limit.count).toBe(3);
  });

  it("answers at once while there is room (no promise on the hot path)", () => {
    const { limit } = setup(10);
    expect(limit.allows("x")).toBe(true);
    expect(typeof limit.reserve("x")).toBe("function");
  });

  it("a deleted key frees its place; a reload replaces the count", async () => {
    const { limit, visit, inner } = setup(1);
    await visit("a");
    await expect(visit("b")).rejects.toBeInstanceOf(KeyLimitError);
    inner.rows.delete("a");
    limit.deleted(1);
    expect(await visit("b")).toBe(1);
    limit.load(1);
    await expect(visit("c")).rejects.toThrow(/at most 1 keys/);
  });
});
