import { describe, expect, it } from "vitest";
import { DAY_MS, HistoryRetention } from "./retention.ts";
import { FakeClock, silentLogger } from "./testing.ts";

// The pruning schedule without a database: a list of row times stands for the history table.
function setup(rowTimes: number[], batchMs = 0) {
  const clock = new FakeClock();
  const rows = [...rowTimes];
  const calls: Array<{ at: number; before: number; deleted: number }> = [];
  const retention = new HistoryRetention(
    async (before, limit) => {
      const at = clock.now();
      let deleted = 0;
      for (let i = rows.length - 1; i >= 0 && deleted < limit; i--) {
        if (rows[i]! < before) {
          rows.splice(i, 1);
          deleted++;
        }
      }
      clock.advance(batchMs); // the batch's own time
      calls.push({ at, before, deleted });
      return deleted;
    },
    clock,
    silentLogger,
    { days: 90, batch: 10, intervalMs: 3_600_000, pauseMs: 5 },
  );
  return { clock, rows, calls, retention };
}

describe("HistoryRetention", () => {
  it("at start, deletes everything past the retention in bounded batches, pausing at least a batch's time between them", async () => {
    const now = new FakeClock().now();
    const old = Array.from({ length: 35 }, (_, i) => now - 91 * DAY_MS - i);
    const recent = [now - 89 * DAY_MS, now - 1000];
    const { clock, rows, calls, retention } = setup([...old, ...recent], 20);
    retention.start();
    await clock.advanceAsync(1000);
    expect(calls.map((c) => c.deleted)).toEqual([10, 10, 10, 5]);
    expect(calls.every((c) => c.before === now - 90 * DAY_MS)).toBe(true);
    // 20 ms per batch, so the pause is 20 (not the 5 ms minimum): batches start 40 ms apart.
    expect(calls.map((c) => c.at - now)).toEqual([0, 40, 80, 120]);
    expect(rows).toEqual(recent);
    expect(retention.pruned).toBe(35);
    await retention.stop();
  });

  it("runs again every interval, and not after stop", async () => {
    const { clock, calls, retention, rows } = setup([]);
    retention.start();
    await clock.advanceAsync(10);
    expect(calls).toHaveLength(1);
    rows.push(clock.now() - 91 * DAY_MS);
    await clock.advanceAsync(3_600_000);
    expect(calls).toHaveLength(2);
    expect(rows).toEqual([]);
    await retention.stop();
    await clock.advanceAsync(10 * 3_600_000);
    expect(calls).toHaveLength(2);
    expect(clock.pendingTimers).toBe(0);
  });

  it("a failing prune is logged and tried again at the next run", async () => {
    const clock = new FakeClock();
    let attempts = 0;
    const retention = new HistoryRetention(
      async () => {
        attempts++;
        if (attempts === 1) throw new Error("database unavailable");
        return 0;
      },
      clock,
      silentLogger,
      { days: 1, batch: 10, intervalMs: 1000, pauseMs: 1 },
    );
    retention.start();
    await clock.advanceAsync(1500);
    expect(attempts).toBe(2);
    await retention.stop();
  });
});
