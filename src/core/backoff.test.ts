import { describe, expect, it } from "vitest";
import { backoffMs } from "./backoff.ts";

const low = () => 0;
const high = () => 0.999_999;

describe("backoffMs", () => {
  it("doubles from baseMs per attempt: half fixed, half random", () => {
    const opts = { baseMs: 100, maxMs: 100_000 };
    expect([0, 1, 2, 3].map((a) => backoffMs(a, { ...opts, random: low }))).toEqual([50, 100, 200, 400]);
    expect([0, 1, 2, 3].map((a) => backoffMs(a, { ...opts, random: high }))).toEqual([100, 200, 400, 800]);
    expect(backoffMs(2, { ...opts, random: () => 0.5 })).toBe(300);
  });

  it("stops doubling at maxMs", () => {
    const opts = { baseMs: 100, maxMs: 1000 };
    expect(backoffMs(4, { ...opts, random: high })).toBe(1000);
    expect(backoffMs(5, { ...opts, random: low })).toBe(500);
    expect(backoffMs(10_000, { ...opts, random: high })).toBe(1000);
  });

  it("stays finite for any attempt, and treats a negative one as the first", () => {
    for (const attempt of [1023, 1024, 1e9, Infinity]) {
      expect(backoffMs(attempt, { baseMs: 1, maxMs: 5000, random: low })).toBe(2500);
    }
    expect(backoffMs(-3, { baseMs: 100, maxMs: 1000, random: low })).toBe(50);
    expect(backoffMs(3, { baseMs: 0, maxMs: 1000 })).toBe(0);
  });

  it("uses Math.random by default, within [half, whole] of the backoff", () => {
    const seen = new Set<number>();
    for (let i = 0; i < 1000; i++) {
      const d = backoffMs(3, { baseMs: 1000, maxMs: 60_000 });
      expect(d).toBeGreaterThanOrEqual(4000);
      expect(d).toBeLessThanOrEqual(8000);
      seen.add(d);
    }
    expect(seen.size).toBeGreaterThan(100); // jittered, not one value
  });
});
