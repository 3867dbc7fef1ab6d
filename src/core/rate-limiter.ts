// Token buckets per client address (DESIGN.md §7). `burst` tokens, refilled
// at `perSec`; a request takes one. The table is bounded: when full, the
// least recently used bucket is dropped (a Map iterates in insertion order
// and every take re-inserts), so a flood of addresses costs at most
// `maxBuckets` entries, at O(1) per take. A dropped bucket is one that was idle longest, and
// an idle bucket has refilled anyway, so eviction never helps an abuser.

export interface RateLimitOptions {
  burst: number;
  perSec: number;
  maxBuckets?: number;
}

export type Take = { ok: true } | { ok: false; retryAfterS: number };

interface Bucket {
  tokens: number;
  at: number;
}

export class RateLimiter {
  readonly #buckets = new Map<string, Bucket>();
  // One live iterator, kept across calls: it yields the oldest entry without
  // rescanning. A fresh `keys().next()` on every eviction walks past every
  // entry deleted since the table was last compacted (each take re-inserts,
  // each eviction deletes at the front), which made a take cost O(maxBuckets)
  // under a flood of new addresses. Entries behind the iterator have all been
  // evicted, and re-inserted ones move to the end, so it is always the LRU.
  #oldest: MapIterator<string> = this.#buckets.keys();
  readonly #burst: number;
  readonly #perMs: number;
  readonly #max: number;
  refusals = 0;

  constructor(opts: RateLimitOptions) {
    this.#burst = opts.burst;
    this.#perMs = opts.perSec / 1000;
    this.#max = opts.maxBuckets ?? 100_000;
  }

  get size(): number {
    return this.#buckets.size;
  }

  take(address: string, now: number): Take {
    let b = this.#buckets.get(address);
    if (b) {
      this.#buckets.delete(address);
      b.tokens = Math.min(this.#burst, b.tokens + (now - b.at) * this.#perMs);
      b.at = now;
    } else {
      b = { tokens: this.#burst, at: now };
      if (this.#buckets.size >= this.#max) {
        let oldest = this.#oldest.next();
        if (oldest.done) {
          this.#oldest = this.#buckets.keys();
          oldest = this.#oldest.next();
        }
        if (!oldest.done) this.#buckets.delete(oldest.value);
      }
    }
    this.#buckets.set(address, b);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return { ok: true };
    }
    this.refusals++;
    const waitMs = this.#perMs > 0 ? (1 - b.tokens) / this.#perMs : 3_600_000;
    return { ok: false, retryAfterS: Math.max(1, Math.ceil(waitMs / 1000)) };
  }
}

/** A bucket for one socket's messages: two numbers, no map. */
export class MessageBucket {
  #tokens: number;
  #at: number;
  readonly #burst: number;
  readonly #perMs: number;

  constructor(burst: number, perSec: number, now: number) {
    this.#tokens = burst;
    this.#burst = burst;
    this.#perMs = perSec / 1000;
    this.#at = now;
  }

  take(now: number): boolean {
    this.#tokens = Math.min(this.#burst, this.#tokens + (now - this.#at) * this.#perMs);
    this.#at = now;
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }
}
