import { describe, expect, it } from "vitest";
import { MessageBucket, RateLimiter } from "./rate-limiter.ts";

// Fake time throughout: `now` is whatever the test says it is.

describe("RateLimiter", () => {
  it("gives a fresh address its whole burst, then refuses", () => {
    const rl = new RateLimiter({ burst: 5, perSec: 1 });
    for (let i = 0; i < 5; i++) expect(rl.take("a", 0)).toEqual({ ok: true });
    expect(rl.take("a", 0)).toEqual({ ok: false, retryAfterS: 1 });
    expect(rl.refusals).toBe(1);
  });

  it("refills at perSec: one token per second, not before", () => {
    const rl = new RateLimiter({ burst: 5, perSec: 1 });
    for (let i = 0; i < 5; i++) rl.take("a", 1000);
    expect(rl.take("a", 1999).ok).toBe(false); // 0.999 tokens
    expect(rl.take("a", 2000).ok).toBe(true); // 1.0 token (the refused take at 1999 consumed nothing)
    expect(rl.take("a", 2000).ok).toBe(false);
    // 2.5 s later: 2.5 tokens, two takes
    expect(rl.take("a", 4500).ok).toBe(true);
    expect(rl.take("a", 4500).ok).toBe(true);
    expect(rl.take("a", 4500).ok).toBe(false);
  });

  it("refills fractions at higher rates", () => {
    const rl = new RateLimiter({ burst: 2, perSec: 10 });
    rl.take("a", 0);
    rl.take("a", 0);
    expect(rl.take("a", 99).ok).toBe(false);
    expect(rl.take("a", 100).ok).toBe(true);
    expect(rl.take("a", 150).ok).toBe(false);
    expect(rl.take("a", 200).ok).toBe(true);
  });

  it("never holds more than the burst, however long the address was idle", () => {
    const rl = new RateLimiter({ burst: 3, perSec: 1 });
    for (let i = 0; i < 3; i++) rl.take("a", 0);
    let ok = 0;
    for (let i = 0; i < 10; i++) if (rl.take("a", 86_400_000).ok) ok++;
    expect(ok).toBe(3);
  });

  it("rounds Retry-After up to whole seconds, at least 1", () => {
    const slow = new RateLimiter({ burst: 1, perSec: 0.25 }); // one token per 4 s
    expect(slow.take("a", 0).ok).toBe(true);
    expect(slow.take("a", 0)).toEqual({ ok: false, retryAfterS: 4 });
    expect(slow.take("a", 1000)).toEqual({ ok: false, retryAfterS: 3 }); // 3000 ms left
    expect(slow.take("a", 1001)).toEqual({ ok: false, retryAfterS: 3 }); // 2996 ms left: up to 3
    expect(slow.take("a", 3999)).toEqual({ ok: false, retryAfterS: 1 }); // 1 ms left: 1, never 0
    expect(slow.take("a", 4000).ok).toBe(true);

    const fast = new RateLimiter({ burst: 1, perSec: 100 });
    fast.take("a", 0);
    expect(fast.take("a", 0)).toEqual({ ok: false, retryAfterS: 1 }); // 10 ms: still 1 s
  });

  it("answers an hour when nothing refills (RATE_LIMIT_PER_SEC=0)", () => {
    const rl = new RateLimiter({ burst: 1, perSec: 0 });
    expect(rl.take("a", 0).ok).toBe(true);
    expect(rl.take("a", 10_000_000)).toEqual({ ok: false, retryAfterS: 3600 });
  });

  it("keeps one bucket per address", () => {
    const rl = new RateLimiter({ burst: 1, perSec: 1 });
    expect(rl.take("a", 0).ok).toBe(true);
    expect(rl.take("a", 0).ok).toBe(false);
    expect(rl.take("b", 0).ok).toBe(true);
    expect(rl.take("b", 0).ok).toBe(false);
    expect(rl.size).toBe(2);
    expect(rl.refusals).toBe(2);
  });

  it("stays at maxBuckets (default 100,000) through a flood of 1,000,000 distinct addresses, at O(1) a take", () => {
    const rl = new RateLimiter({ burst: 1, perSec: 1 });
    let peak = 0;
    let ok = 0;
    // Counted, not timed: eviction was O(maxBuckets) when each one started a
    // fresh Map iterator (`keys().next()` walks past every entry deleted since
    // the table was last compacted: ~180 s for this flood). One live iterator
    // is O(1); count the iterators started.
    const keys = Map.prototype.keys;
    let iterators = 0;
    Map.prototype.keys = function (this: Map<unknown, unknown>) {
      iterators++;
      return keys.call(this);
    };
    try {
      for (let i = 0; i < 1_000_000; i++) {
        if (rl.take(`a${i}`, i).ok) ok++;
        if ((i & 1023) === 0) peak = Math.max(peak, rl.size);
      }
    } finally {
      Map.prototype.keys = keys;
    }
    expect(ok).toBe(1_000_000); // every new address gets its burst
    expect(Math.max(peak, rl.size)).toBe(100_000);
    expect(rl.size).toBe(100_000);
    expect(rl.refusals).toBe(0);
    // 900,000 evictions; a restarted scan per eviction would start 900,000.
    expect(iterators).toBeLessThanOrEqual(1);
  });

  it("evicts the least recently used bucket, not a busy one", () => {
    const rl = new RateLimiter({ burst: 2, perSec: 0, maxBuckets: 3 });
    rl.take("abuser", 0);
    rl.take("abuser", 0); // empty now
    rl.take("b", 1);
    rl.take("c", 2);
    expect(rl.take("abuser", 3).ok).toBe(false); // refused, and now the most recently used
    rl.take("d", 4); // evicts b, the least recently used
    expect(rl.size).toBe(3);
    expect(rl.take("abuser", 5).ok).toBe(false); // still tracked, still empty
    // b was evicted: it comes back with a fresh bucket (it had 1 token left anyway)
    expect(rl.take("b", 6).ok).toBe(true);
    expect(rl.take("b", 6).ok).toBe(true);
    expect(rl.size).toBe(3);
  });
});

describe("MessageBucket", () => {
  it("allows the burst, then one per second", () => {
    const b = new MessageBucket(3, 1, 0);
    expect([b.take(0), b.take(0), b.take(0), b.take(0)]).toEqual([true, true, true, false]);
    expect(b.take(999)).toBe(false);
    expect(b.take(1000)).toBe(true);
    expect(b.take(1000)).toBe(false);
  });

  it("lets a steady sender at the refill rate go on forever", () => {
    const b = new MessageBucket(3, 1, 0);
    for (let t = 0; t < 600_000; t += 1000) expect(b.take(t)).toBe(true);
  });

  it("caps at the burst after a long silence", () => {
    const b = new MessageBucket(3, 1, 0);
    let ok = 0;
    for (let i = 0; i < 10; i++) if (b.take(3_600_000)) ok++;
    expect(ok).toBe(3);
  });
});
