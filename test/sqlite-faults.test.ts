import { closeSync, mkdtempSync, openSync, readdirSync, rmSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { WriteBatcher } from "../src/core/batcher.ts";
import { StoreUnavailableError } from "../src/core/errors.ts";
import { createLogger } from "../src/core/logger.ts";
import { openSqliteFile } from "../src/db/sqlite/file.ts";
import { systemClock } from "../src/runtime/clock.ts";
import { canChattr, canMount, immutable, mountTmpfs, type Tmpfs } from "./helpers/mounts.ts";

// The disk failing under a running store: a full file system (a small tmpfs
// filled up) and files that stop taking writes (immutable, as on a file
// system remounted read-only after errors). Each must be a retryable store
// error and a failing readiness ping, never a crash, and counting must resume
// with exact totals once the disk is back.

const silent = createLogger("error", () => {});
const mounts: Tmpfs[] = [];
const dirs: string[] = [];
afterAll(() => {
  for (const m of mounts) m.unmount();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** Writes `path` until the file system is full. */
function fill(path: string): void {
  const fd = openSync(path, "w");
  const chunk = Buffer.alloc(64 * 1024, 1);
  try {
    for (;;) writeSync(fd, chunk);
  } catch (err) {
    if ((err as { code?: string }).code !== "ENOSPC") throw err;
  } finally {
    closeSync(fd);
  }
}

const many = (prefix: string, n: number) => new Map(Array.from({ length: n }, (_, i) => [`${prefix}/${i}/${"x".repeat(100)}`, 1]));

describe.skipIf(!canMount)("a full disk", () => {
  it("fails increments and readiness with 'disk full', and the batcher's waiting visits commit once space returns", async () => {
    const fs = mountTmpfs("2m");
    mounts.push(fs);
    const store = await openSqliteFile(fs.dir);
    try {
      await store.increment(new Map([["/before", 5]]));
      fill(join(fs.dir, "filler"));

      const err = await store.increment(many("/full", 50)).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(StoreUnavailableError);
      expect((err as Error).message).toMatch(/disk full/);
      await expect(store.ping()).rejects.toThrow(/disk full/);

      // Visits arriving meanwhile wait in the batcher, which keeps retrying.
      const batcher = new WriteBatcher(store, systemClock, silent, { commitTimeoutMs: 60_000, minBackoffMs: 10, maxBackoffMs: 50 });
      const keys = [...many("/waiting", 40).keys()];
      const visits = keys.flatMap((key) => [batcher.add(key), batcher.add(key)]);
      await expect.poll(() => batcher.failing).toBe(true);
      expect(batcher.pendingVisits).toBe(80);

      rmSync(join(fs.dir, "filler"));
      const committed = await Promise.all(visits);
      expect(committed.every((c) => c.total === 2)).toBe(true);
      await store.ping();
      const totals = await store.totals(["/before", ...keys, ...many("/full", 50).keys()]);
      expect(totals.get("/before")).toBe(5);
      for (const key of keys) expect(totals.get(key)).toBe(2);
      // The increment that failed was never acknowledged, and nothing of it was kept.
      expect([...totals.keys()].filter((k) => k.startsWith("/full/"))).toEqual([]);
      expect((await store.history("/before", 5)).reduce((n, r) => n + r.visits, 0)).toBe(5);
    } finally {
      await store.close();
    }
  });
});

const immutableDir = mkdtempSync(join(tmpdir(), "headcount-faults-"));
dirs.push(immutableDir);
describe.skipIf(!canChattr(immutableDir))("files that stop taking writes", () => {
  it("fail increments and readiness as unavailable, and counting resumes when they take writes again", async () => {
    const store = await openSqliteFile(immutableDir);
    const files = () => readdirSync(immutableDir).filter((f) => f.startsWith("headcount.db")).map((f) => join(immutableDir, f));
    try {
      await store.increment(new Map([["/ro", 1]]));
      immutable(files(), true);
      try {
        const err = await store.increment(new Map([["/ro", 1]])).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(StoreUnavailableError);
        expect((err as Error).message).toMatch(/disk I\/O error|read-only/);
        await expect(store.ping()).rejects.toBeInstanceOf(StoreUnavailableError);
      } finally {
        immutable(files(), false);
      }
      await store.ping();
      expect((await store.increment(new Map([["/ro", 1]]))).get("/ro")).toBe(2);
    } finally {
      await store.close();
    }
  });
});
