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
  async failed(): Promise<void> {}
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
