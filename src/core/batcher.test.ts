import { describe, expect, it } from "vitest";
import { WriteBatcher, type BatcherOptions, type Committed } from "./batcher.ts";
import { CommitTimeoutError } from "./errors.ts";
import { FakeClock, FakeStore, settle, silentLogger } from "./testing.ts";

function setup(initial: Record<string, number> = {}, opts: Partial<BatcherOptions> = {}) {
  const store = new FakeStore(initial);
  const clock = new FakeClock();
  const commits: Array<[number, number]> = [];
  const batcher = new WriteBatcher(store, clock, silentLogger, {
    commitTimeoutMs: 1000,
    onCommit: (keys, visits) => commits.push([keys, visits]),
    ...opts,
  });
  return { store, clock, batcher, commits };
}

/** Records how each visit ended, without leaving a rejection unhandled. */
function track(p: Promise<Committed>) {
  const out: { value?: Committed; error?: unknown; done: boolean } = { done: false };
  p.then(
    (v) => Object.assign(out, { value: v, done: true }),
    (e: unknown) => Object.assign(out, { error: e, done: true }),
  );
  return out;
}

describe("WriteBatcher", () => {
  it("commits a lone visit in one statement and numbers it", async () => {
    const { store, batcher, commits } = setup({ "/": 41 });
    const c = await batcher.add("/");
    expect(c).toEqual({ key: "/", total: 42, visitor: 42 });
    expect(store.calls).toEqual([{ "/": 1 }]);
    expect(commits).toEqual([[1, 1]]);
    expect(batcher.pendingVisits).toBe(0);
  });

  it("puts visits from the same tick in one statement", async () => {
    const { store, batcher } = setup();
    const all = await Promise.all([batcher.add("/a"), batcher.add("/a"), batcher.add("/b"), batcher.add("/a")]);
    expect(store.calls).toEqual([{ "/a": 3, "/b": 1 }]);
    expect(all).toEqual([
      { key: "/a", total: 3, visitor: 1 },
      { key: "/a", total: 3, visitor: 2 },
      { key: "/b", total: 1, visitor: 1 },
      { key: "/a", total: 3, visitor: 3 },
    ]);
  });

  it("sums visits that arrive during a commit into exactly one next statement", async () => {
    const { store, batcher, commits } = setup({ "/a": 10 });
    store.hold();
    const first = track(batcher.add("/a"));
    await settle();
    expect(store.calls).toEqual([{ "/a": 1 }]);

    // Arrive in several ticks while the first commit is in flight.
    const later: Array<ReturnType<typeof track>> = [];
    later.push(track(batcher.add("/a")));
    await settle();
    later.push(track(batcher.add("/b")), track(batcher.add("/a")));
    await settle();
    later.push(track(batcher.add("/a")), track(batcher.add("/b")));
    await settle();
    expect(store.calls).toHaveLength(1);
    expect(batcher.pendingVisits).toBe(5);
    expect(first.done).toBe(false);

    store.commitHeld();
    await settle();
    expect(first.value).toEqual({ key: "/a", total: 11, visitor: 11 });
    expect(store.calls).toEqual([{ "/a": 1 }, { "/a": 3, "/b": 2 }]);
    expect(later.every((t) => !t.done)).toBe(true);

    store.commitHeld();
    await settle();
    expect(later.map((t) => t.value)).toEqual([
      { key: "/a", total: 14, visitor: 12 },
      { key: "/b", total: 2, visitor: 1 },
      { key: "/a", total: 14, visitor: 13 },
      { key: "/a", total: 14, visitor: 14 },
      { key: "/b", total: 2, visitor: 2 },
    ]);
    expect(store.calls).toHaveLength(2);
    expect(commits).toEqual([
      [1, 1],
      [2, 5],
    ]);
    expect(store.data.get("/a")).toBe(14);
  });

  it("never has more than one commit in flight and numbers visitors contiguously", async () => {
    const { store, batcher } = setup({ "/": 100 });
    store.hold();
    const visits: Array<ReturnType<typeof track>> = [];
    // Rounds of arrivals, each while the previous commit is still open.
    for (let round = 0; round < 6; round++) {
      for (let i = 0; i <= round; i++) visits.push(track(batcher.add("/")));
      await settle();
      expect(store.inFlight).toBe(1);
      if (store.held > 0) store.commitHeld();
      await settle();
    }
    store.unhold();
    while (store.held > 0) {
      store.commitHeld();
      await settle();
    }
    await batcher.flush();
    expect(store.maxInFlight).toBe(1);
    const n = visits.length; // 1 + 2 + ... + 6
    expect(n).toBe(21);
    expect(store.data.get("/")).toBe(100 + n);
    // Each statement after the first carries everything that queued behind the one before.
    expect(store.calls.map((c) => c["/"])).toEqual([1, 2, 3, 4, 5, 6]);
    const numbers = visits.map((t) => t.value!.visitor);
    expect(numbers).toEqual(Array.from({ length: n }, (_, i) => 101 + i));
    for (const t of visits) expect(t.value!.visitor).toBeLessThanOrEqual(t.value!.total);
  });

  it("gives the visits of one batch the numbers total - n + 1 .. total", async () => {
    const { store, batcher } = setup({ k: 5 });
    store.hold();
    void batcher.add("x");
    await settle();
    const batch = [batcher.add("k"), batcher.add("k"), batcher.add("k"), batcher.add("k")];
    store.data.set("k", 50); // someone else (another instance) counted meanwhile
    store.commitHeld();
    await settle();
    store.commitHeld();
    const results = await Promise.all(batch);
    expect(results.map((r) => r.total)).toEqual([54, 54, 54, 54]);
    expect(results.map((r) => r.visitor)).toEqual([51, 52, 53, 54]);
  });

  it("splits a backlog of many keys over several statements, one at a time", async () => {
    const { store, batcher } = setup({}, { maxKeysPerCommit: 2 });
    const all = Promise.all(["a", "b", "c", "d", "e"].map((k) => batcher.add(k)));
    const results = await all;
    expect(store.calls).toEqual([{ a: 1, b: 1 }, { c: 1, d: 1 }, { e: 1 }]);
    expect(store.maxInFlight).toBe(1);
    expect(results.map((r) => r.visitor)).toEqual([1, 1, 1, 1, 1]);
  });

  it("retries a failed commit and keeps arrival order", async () => {
    const { store, clock, batcher } = setup({ "/": 0 });
    store.failNext(1);
    const a = track(batcher.add("/"));
    const b = track(batcher.add("/"));
    await settle();
    expect(store.calls).toEqual([{ "/": 2 }]);
    expect(batcher.failing).toBe(true);
    expect(batcher.pendingVisits).toBe(2);
    expect(a.done || b.done).toBe(false);

    // A newer visit arrives during the back-off: it waits for the retry.
    const c = track(batcher.add("/"));
    const d = track(batcher.add("/other"));
    await settle();
    expect(store.calls).toHaveLength(1);

    await clock.advanceAsync(50); // first back-off is 25..50 ms
    expect(store.calls).toEqual([{ "/": 2 }, { "/": 3, "/other": 1 }]);
    expect(batcher.failing).toBe(false);
    expect([a.value?.visitor, b.value?.visitor, c.value?.visitor]).toEqual([1, 2, 3]);
    expect(d.value).toEqual({ key: "/other", total: 1, visitor: 1 });
    expect(store.data.get("/")).toBe(3);
  });

  it("puts visits that failed ahead of those that queued behind them", async () => {
    const { store, clock, batcher } = setup({ "/": 0 });
    store.hold();
    const a = track(batcher.add("/"));
    const b = track(batcher.add("/"));
    await settle();
    const c = track(batcher.add("/")); // queued while the first statement is in flight
    const d = track(batcher.add("/"));
    await settle();
    store.failHeld();
    await settle();
    expect(batcher.pendingVisits).toBe(4);
    store.unhold();
    await clock.advanceAsync(50);
    expect(store.calls).toEqual([{ "/": 2 }, { "/": 4 }]);
    expect([a, b, c, d].map((t) => t.value?.visitor)).toEqual([1, 2, 3, 4]);
  });

  it("backs off between retries, doubling up to maxBackoffMs", async () => {
    const { store, clock, batcher } = setup({}, { minBackoffMs: 100, maxBackoffMs: 400, commitTimeoutMs: 60_000 });
    store.failNext(5);
    const start = clock.now();
    const v = track(batcher.add("/"));
    await settle();
    const at: number[] = [0];
    while (store.calls.length < 6) {
      const before = store.calls.length;
      const due = clock.nextDue();
      expect(due).not.toBeNull(); // a retry is always scheduled while failing
      await clock.advanceAsync(due! - clock.now());
      expect(store.calls.length - before).toBe(1);
      at.push(clock.now() - start);
    }
    const gaps = at.slice(1).map((t, i) => t - at[i]!);
    // Delay is backoff/2 .. backoff, backoff = 100, 200, 400, 400, 400.
    const bounds = [100, 200, 400, 400, 400];
    expect(gaps).toHaveLength(5);
    gaps.forEach((g, i) => {
      expect(g).toBeGreaterThanOrEqual(bounds[i]! / 2);
      expect(g).toBeLessThanOrEqual(bounds[i]!);
    });
    await settle();
    expect(v.value).toEqual({ key: "/", total: 1, visitor: 1 });
    expect(store.calls).toHaveLength(6);
  });

  it("refuses visits older than commitTimeoutMs with CommitTimeoutError, losing and double-counting nothing", async () => {
    const { store, clock, batcher } = setup({ "/": 0 }, { commitTimeoutMs: 1000 });
    store.hold();
    const old = track(batcher.add("/")); // t = 0
    await settle();
    await clock.advanceAsync(999);
    store.failHeld(); // age 999 < 1000: kept for a retry
    await settle();
    expect(old.done).toBe(false);

    await clock.advanceAsync(50); // the retry goes out, and is held
    expect(store.calls).toEqual([{ "/": 1 }, { "/": 1 }]);
    const fresh = track(batcher.add("/")); // arrives during the second attempt
    await settle();
    store.failHeld(); // now the first visit is over 1000 ms old
    await settle();
    expect(old.error).toBeInstanceOf(CommitTimeoutError);
    expect(fresh.done).toBe(false);
    expect(batcher.pendingVisits).toBe(1);

    await clock.advanceAsync(100); // third attempt carries only the fresh visit
    expect(store.calls).toEqual([{ "/": 1 }, { "/": 1 }, { "/": 1 }]);
    store.commitHeld();
    await settle();
    expect(fresh.value).toEqual({ key: "/", total: 1, visitor: 1 });
    expect(store.data.get("/")).toBe(1);
    expect(batcher.pendingVisits).toBe(0);
    expect(store.held).toBe(0);
  });

  it("under a long outage, every visit either commits once or is refused", async () => {
    const { store, clock, batcher } = setup({ "/": 0, "/b": 0 }, { commitTimeoutMs: 500, maxBackoffMs: 200 });
    store.failNext(1_000_000);
    const visits: Array<ReturnType<typeof track>> = [];
    for (let t = 0; t < 1500; t += 37) {
      visits.push(track(batcher.add(t % 2 ? "/" : "/b")));
      await clock.advanceAsync(37);
    }
    store.failNext(0);
    await clock.advanceAsync(1000);
    expect(visits.every((v) => v.done)).toBe(true);
    const ok = visits.filter((v) => v.value);
    const refused = visits.filter((v) => v.error);
    expect(refused.length).toBeGreaterThan(0);
    expect(ok.length).toBeGreaterThan(0);
    for (const r of refused) expect(r.error).toBeInstanceOf(CommitTimeoutError);
    for (const key of ["/", "/b"]) {
      const mine = ok.filter((v) => v.value!.key === key).map((v) => v.value!.visitor);
      expect(store.data.get(key)).toBe(mine.length);
      expect(mine).toEqual(Array.from({ length: mine.length }, (_, i) => i + 1));
    }
  });

  it("flush() waits for in-flight, queued and retried visits", async () => {
    const { store, clock, batcher } = setup({}, { commitTimeoutMs: 60_000 });
    store.hold();
    const a = track(batcher.add("/a"));
    await settle();
    const b = track(batcher.add("/b"));
    let flushed = false;
    const f = batcher.flush().then(() => (flushed = true));
    await settle();
    expect(flushed).toBe(false);

    store.failHeld(); // first statement fails: flush keeps waiting through the back-off
    await clock.advanceAsync(100);
    expect(flushed).toBe(false);
    expect(store.calls).toEqual([{ "/a": 1 }, { "/a": 1, "/b": 1 }]);

    store.commitHeld();
    await clock.advanceAsync(20);
    await f;
    expect(flushed).toBe(true);
    expect(a.value).toEqual({ key: "/a", total: 1, visitor: 1 });
    expect(b.value).toEqual({ key: "/b", total: 1, visitor: 1 });
    expect(batcher.pendingVisits).toBe(0);
  });

  it("flush() commits at once what is queued, and returns at once when idle", async () => {
    const { store, batcher } = setup();
    await batcher.flush();
    expect(store.calls).toEqual([]);
    const v = track(batcher.add("/"));
    await batcher.flush();
    expect(v.value).toEqual({ key: "/", total: 1, visitor: 1 });
    expect(store.calls).toEqual([{ "/": 1 }]);
  });

  it("abandon() refuses what is pending and cancels the retry", async () => {
    const { store, clock, batcher } = setup({}, { commitTimeoutMs: 60_000 });
    store.failNext(1);
    const a = track(batcher.add("/"));
    await settle();
    expect(clock.pendingTimers).toBe(1);
    const reason = new Error("shutdown deadline passed");
    batcher.abandon(reason);
    await settle();
    expect(a.error).toBe(reason);
    expect(clock.pendingTimers).toBe(0);
    expect(batcher.pendingVisits).toBe(0);
    await clock.advanceAsync(5000);
    expect(store.calls).toHaveLength(1);
    expect(store.data.size).toBe(0);
  });

  it("with gatherMs (a synchronous store), visits from separate ticks within the window share one commit", async () => {
    const { store, clock, batcher } = setup({}, { gatherMs: 2 });
    const a = track(batcher.add("/"));
    await settle(); // another tick: a microtask-only batcher would have committed by now
    expect(store.calls).toEqual([]);
    clock.advance(1);
    const b = track(batcher.add("/"));
    await clock.advanceAsync(1);
    expect(store.calls).toEqual([{ "/": 2 }]);
    expect([a.value?.visitor, b.value?.visitor]).toEqual([1, 2]);
  });

  it("with gatherMs, after a commit that held the loop for d ms the next one waits at least d", async () => {
    const clock = new FakeClock();
    const store = new FakeStore();
    const blocking = {
      ...store,
      totals: store.totals.bind(store),
      ping: store.ping.bind(store),
      close: store.close.bind(store),
      // A synchronous commit: the clock moves while it runs, as an fsync would hold the thread.
      increment: (counts: ReadonlyMap<string, number>) => {
        clock.advance(20);
        return store.increment(counts);
      },
    };
    const batcher = new WriteBatcher(blocking, clock, silentLogger, { commitTimeoutMs: 1000, gatherMs: 1 });
    track(batcher.add("/"));
    await clock.advanceAsync(1);
    expect(store.calls).toHaveLength(1);
    track(batcher.add("/"));
    await clock.advanceAsync(19);
    expect(store.calls).toHaveLength(1);
    track(batcher.add("/"));
    await clock.advanceAsync(1);
    expect(store.calls).toEqual([{ "/": 1 }, { "/": 2 }]);
  });
});
