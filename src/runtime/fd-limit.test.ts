import { describe, expect, it } from "vitest";
import { defaultMaxSockets, openFileCount, openFileLimit } from "./fd-limit.ts";

describe("defaultMaxSockets", () => {
  it("leaves the descriptors already open plus 5% (at least 64) below the limit", () => {
    expect(defaultMaxSockets(400, 0)).toBe(336);
    expect(defaultMaxSockets(400, 107)).toBe(229); // PGlite holds ~100 files
    expect(defaultMaxSockets(20_000, 100)).toBe(18_900);
  });

  it("never goes below 16, and is 10000 when the limit is unknown", () => {
    expect(defaultMaxSockets(100, 90)).toBe(16);
    expect(defaultMaxSockets(undefined, 50)).toBe(10_000);
  });

  it("counts this process's open descriptors by default (Linux)", () => {
    const limit = openFileLimit();
    const open = openFileCount();
    if (limit === undefined || open === undefined) return; // not Linux
    expect(open).toBeGreaterThan(2);
    expect(defaultMaxSockets(limit)).toBeLessThanOrEqual(limit - open - 64 + 1);
  });
});
