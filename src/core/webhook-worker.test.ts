import { describe, expect, it } from "vitest";
import type { HttpPoster, Outbox, OutboxEvent } from "./ports.ts";
import { FakeClock, settle, silentLogger } from "./testing.ts";
import { parseWebhookRules } from "./webhook-rules.ts";
import { WebhookWorker } from "./webhook-worker.ts";

// The worker's claiming rules against an in-memory outbox and a poster that
// holds every request until the test lets it go: no HTTP client pool here
// (Bun's and Deno's fetch have none), so any cap is the worker's own.

const OPTS = { concurrency: 4, perOrigin: 2, maxAttempts: 3, retryBaseMs: 100, retryMaxMs: 1000, pollMs: 250, lockMs: 10_000 };

class MemoryOutbox implements Outbox {
  pending: OutboxEvent[] = [];
  delivered_: string[] = [];
  claims: Array<{ limit: number; ruleIds: readonly string[] }> = [];
  #n = 0;

  add(ruleId: string, count: number): void {
    for (let i = 0; i < count; i++) {
      const id = `e${++this.#n}`;
      this.pending.push({ id, ruleId, key: "/k", kind: "milestone", value: this.#n, total: this.#n, online: null, createdAt: "", attempts: 0 });
    }
  }
  async claim(limit: number, _lockMs: number, ruleIds: readonly string[]): Promise<OutboxEvent[]> {
    this.claims.push({ limit, ruleIds });
    const out = this.pending.filter((e) => ruleIds.includes(e.ruleId)).slice(0, limit);
    this.pending = this.pending.filter((e) => !out.includes(e));
    return out.map((e) => ({ ...e, attempts: e.attempts + 1 }));
  }
  async delivered(id: string): Promise<void> {
    this.delivered_.push(id);
  }
  async failed(_id: string, _error: string, _retryInMs: number | null): Promise<void> {}
  async fireOnline(): Promise<boolean> {
    return false;
  }
  async rearm(): Promise<void> {}
  async summary() {
    return { pending: this.pending.length, delivered: this.delivered_.length, dead: 0 };
  }
  async recentDead() {
    return [];
  }
}

class HeldPoster implements HttpPoster {
  held: Array<{ origin: string; release: () => void }> = [];
  async post(url: string): Promise<number> {
    await new Promise<void>((release) => this.held.push({ origin: new URL(url).origin, release }));
    return 200;
  }
  async close(): Promise<void> {}
  inFlight(origin: string): number {
    return this.held.filter((h) => h.origin === origin).length;
  }
  release(origin: string): void {
    const i = this.held.findIndex((h) => h.origin === origin);
    this.held.splice(i, 1)[0]!.release();
  }
}

const rules = parseWebhookRules(
  JSON.stringify([
    { key: "/k", every: 1, url: "http://slow.test/hook" },
    { key: "/k", milestones: [1], url: "http://fast.test/hook" },
  ]),
);
const [slow, fast] = rules as [(typeof rules)[0], (typeof rules)[0]];

async function run(clock: FakeClock, ms = 0): Promise<void> {
  for (let i = 0; i < 5; i++) {
    clock.advance(ms);
    await settle();
  }
}

/** Stops claiming; deliveries still held are abandoned (the fake clock runs the deadline). */
async function stop(worker: WebhookWorker, clock: FakeClock): Promise<void> {
  const stopped = worker.stop(0);
  clock.advance(1);
  await stopped;
}

describe("WebhookWorker", () => {
  it("never has more than perOrigin deliveries at one receiver, and a slow one leaves the rest of the pool to others", async () => {
    const clock = new FakeClock();
    const outbox = new MemoryOutbox();
    const poster = new HeldPoster();
    outbox.add(slow.id, 12);
    const worker = new WebhookWorker(rules, outbox, poster, () => "sig", clock, silentLogger, OPTS);
    worker.start();
    await run(clock, OPTS.pollMs);
    expect(poster.inFlight(slow.origin)).toBe(2);
    expect(worker.inFlight).toBe(2);

    outbox.add(fast.id, 1);
    await run(clock, OPTS.pollMs);
    expect(poster.inFlight(fast.origin)).toBe(1);
    expect(poster.inFlight(slow.origin)).toBe(2);

    poster.release(slow.origin);
    await run(clock, OPTS.pollMs);
    expect(poster.inFlight(slow.origin)).toBe(2); // the next slow event took the freed slot, no more
    expect(outbox.delivered_).toHaveLength(1);
    await stop(worker, clock);
  });

  it("claims only its own rules' events, and asks for no more than a receiver's free slots", async () => {
    const clock = new FakeClock();
    const outbox = new MemoryOutbox();
    const poster = new HeldPoster();
    outbox.add("a rule this instance does not have", 3);
    outbox.add(fast.id, 5);
    const worker = new WebhookWorker([fast], outbox, poster, () => "sig", clock, silentLogger, OPTS);
    worker.start();
    await run(clock, OPTS.pollMs);
    expect(outbox.claims.every((c) => c.ruleIds.length === 1 && c.ruleIds[0] === fast.id)).toBe(true);
    expect(Math.max(...outbox.claims.map((c) => c.limit))).toBeLessThanOrEqual(OPTS.perOrigin);
    expect(poster.inFlight(fast.origin)).toBe(2);
    expect(outbox.pending.filter((e) => e.ruleId !== fast.id)).toHaveLength(3);
    await stop(worker, clock);
  });

  it("deliverDue (a Durable Object's alarm) delivers everything due under the same per-receiver cap, and reports the earliest retry", async () => {
    const clock = new FakeClock();
    const outbox = new MemoryOutbox();
    const poster = new HeldPoster();
    outbox.add(slow.id, 5);
    outbox.add(fast.id, 1);
    const failing: HttpPoster = {
      post: async (url) => (url.includes("fast") ? 500 : poster.post(url)),
      close: async () => {},
    };
    const worker = new WebhookWorker(rules, outbox, failing, () => "sig", clock, silentLogger, OPTS);
    let result: number | null | undefined;
    const done = worker.deliverDue().then((r) => (result = r));
    let maxSlow = 0;
    for (let i = 0; i < 50 && result === undefined; i++) {
      await settle();
      maxSlow = Math.max(maxSlow, poster.inFlight(slow.origin));
      if (poster.inFlight(slow.origin) > 0) poster.release(slow.origin);
    }
    await done;
    expect(maxSlow).toBe(OPTS.perOrigin);
    expect(outbox.delivered_).toHaveLength(5);
    expect(outbox.pending).toHaveLength(0);
    // The fast receiver failed once: it is due again after the first backoff (50-100 ms), not now and not never.
    expect(result).toBeGreaterThanOrEqual(clock.now() + OPTS.retryBaseMs / 2);
    expect(result).toBeLessThanOrEqual(clock.now() + OPTS.retryBaseMs);
    expect(clock.pendingTimers).toBe(0); // no pool timer: the caller schedules itself
  });
});

/** Times of the claims the worker made, relative to `from`. */
const claimTimes = (outbox: MemoryOutbox, times: number[], clock: FakeClock, from: number) => {
  const claim = outbox.claim.bind(outbox);
  outbox.claim = (limit, lockMs, ruleIds) => {
    times.push(clock.now() - from);
    return claim(limit, lockMs, ruleIds);
  };
};

describe("WebhookWorker polling", () => {
  it("backs off while claims come back empty, doubling to idlePollMaxMs, and never claims another instance's rules' events", async () => {
    const clock = new FakeClock();
    const outbox = new MemoryOutbox();
    outbox.add("a rule no running instance has", 5); // pending for good
    const times: number[] = [];
    claimTimes(outbox, times, clock, clock.now());
    const worker = new WebhookWorker([fast], outbox, new HeldPoster(), () => "sig", clock, silentLogger, { ...OPTS, idlePollMaxMs: 4000 });
    worker.start();
    for (let i = 0; i < 60; i++) await clock.advanceAsync(1000);
    expect(times.slice(0, 8)).toEqual([0, 250, 750, 1750, 3750, 7750, 11750, 15750]);
    // A minute idle: 19 claims, where a fixed 250 ms poll made 240.
    expect(times).toHaveLength(19);
    expect(outbox.pending).toHaveLength(5);
    await stop(worker, clock);
  });

  it("wake() claims within pollMs of the last poll, however long the idle wait has grown, and no more often", async () => {
    const clock = new FakeClock();
    const outbox = new MemoryOutbox();
    const poster = new HeldPoster();
    const times: number[] = [];
    const start = clock.now();
    claimTimes(outbox, times, clock, start);
    const worker = new WebhookWorker([fast], outbox, poster, () => "sig", clock, silentLogger, OPTS);
    worker.start();
    for (let i = 0; i < 19; i++) await clock.advanceAsync(1000); // idle: polls 4 s apart now
    await clock.advanceAsync(800); // 50 ms after the poll at 19,750; the next would be at 23,750
    const before = times.length;
    outbox.add(fast.id, 1);
    for (let i = 0; i < 10; i++) worker.wake(); // a burst of commits
    await clock.advanceAsync(300);
    expect(times.slice(before)).toEqual([20_000]); // pollMs after the last poll, once
    expect(poster.inFlight(fast.origin)).toBe(1);
    poster.release(fast.origin);
    await clock.advanceAsync(0);
    expect(outbox.delivered_).toHaveLength(1);
    await stop(worker, clock);
  });

  it("a failed delivery is tried again when due, not after the idle wait", async () => {
    const clock = new FakeClock();
    const outbox = new MemoryOutbox();
    const due = new Map<string, number>();
    const claim = outbox.claim.bind(outbox);
    outbox.claim = async (limit, lockMs, ruleIds) => {
      const held = outbox.pending.filter((e) => (due.get(e.id) ?? 0) > clock.now());
      outbox.pending = outbox.pending.filter((e) => !held.includes(e));
      const got = await claim(limit, lockMs, ruleIds);
      outbox.pending.push(...held);
      return got;
    };
    outbox.failed = async (id: string, _error: string, retryInMs: number | null) => {
      if (retryInMs === null) return;
      due.set(id, clock.now() + retryInMs);
      outbox.pending.push({ id, ruleId: fast.id, key: "/k", kind: "milestone", value: 1, total: 1, online: null, createdAt: "", attempts: 1 });
    };
    const attempts: number[] = [];
    const start = clock.now();
    const poster: HttpPoster = {
      post: async () => (attempts.push(clock.now() - start), attempts.length === 1 ? 500 : 200),
      close: async () => {},
    };
    const retryBaseMs = 30_000; // first retry in 15-30 s: long past the idle wait's growth
    const worker = new WebhookWorker([fast], outbox, poster, () => "sig", clock, silentLogger, { ...OPTS, retryBaseMs, retryMaxMs: 60_000 });
    outbox.add(fast.id, 1);
    worker.start();
    for (let i = 0; i < 400 && outbox.delivered_.length === 0; i++) await clock.advanceAsync(100);
    expect(attempts).toHaveLength(2);
    const retryAt = due.values().next().value! - start;
    expect(attempts[1]).toBeGreaterThanOrEqual(retryAt);
    expect(attempts[1]).toBeLessThanOrEqual(retryAt + 100); // the test's step
    await stop(worker, clock);
  });
});
