import { HeadcountError } from "./errors.ts";
import type { CounterStore, DayStore } from "./ports.ts";

// MAX_KEYS (DESIGN.md §3): anyone can name a key, and each key is a counters
// row plus a history row per minute, so the number of keys is capped. Once
// the store holds `max` keys, a visit to a key it does not hold is refused;
// existing keys keep counting.
//
// No count(*) per visit or per batch: the number of keys is loaded at start
// (and on PostgreSQL, where other instances create keys too, refreshed every
// minute), and grows as this instance's commits create keys. A commit that
// may create a key reserves a place first (`reserve`), so one instance never
// goes past the cap however many new keys arrive at once; several instances
// on one PostgreSQL may each take the last places before they hear of the
// others' (README "MAX_KEYS"). While there is room, nothing is looked up;
// at the cap, a key is looked up once per visit that might create it (a
// primary-key read), unless the caller already knows the key exists.

export class KeyLimitError extends HeadcountError {
  constructor(max: number) {
    super(403, "key_limit", `this server counts at most ${max} keys and has reached that limit; visits to counters it already has still count`);
    this.name = "KeyLimitError";
  }
}

export class KeyLimit {
  readonly max: number;
  /** New keys refused (the metric). */
  refusals = 0;
  /** Keys in the store as last counted, plus those created since. */
  #stored = 0;
  /** Keys with a commit in flight that may create them, and how many such commits. */
  readonly #pending = new Map<string, number>();
  /** Whether a key is in the store: a caller's own knowledge first (a live room), then the store. */
  readonly #exists: (key: string) => Promise<boolean>;

  constructor(max: number, exists: (key: string) => Promise<boolean>) {
    this.max = max;
    this.#exists = exists;
  }

  /** Keys in the store (approximate across instances). */
  get count(): number {
    return this.#stored;
  }

  /** The store's own count (at start, and on the periodic refresh). */
  load(count: number): void {
    this.#stored = count;
  }

  get #full(): boolean {
    return this.#stored + this.#pending.size >= this.max;
  }

  /**
   * Whether a visit to `key` may be admitted: true at once while there is
   * room, a lookup at the cap. Reserves nothing: admission's early, clear
   * refusal; the commit's `reserve` is what holds the line.
   */
  allows(key: string): boolean | Promise<boolean> {
    if (!this.#full || this.#pending.has(key)) return true;
    return this.#exists(key).then((yes) => {
      if (!yes && this.#full && !this.#pending.has(key)) {
        this.refusals++;
        return false;
      }
      return true;
    });
  }

  /**
   * Before a commit for `key`: takes a place for it, or throws KeyLimitError.
   * Resolves to a release, to call when the commit has settled either way.
   */
  reserve(key: string): (() => void) | Promise<() => void> {
    if (this.#pending.has(key) || !this.#full) return this.#take(key);
    return this.#exists(key).then((yes) => {
      // An existing key takes no place: it creates nothing.
      if (yes) return () => {};
      if (this.#pending.has(key) || !this.#full) return this.#take(key);
      this.refusals++;
      throw new KeyLimitError(this.max);
    });
  }

  #take(key: string): () => void {
    this.#pending.set(key, (this.#pending.get(key) ?? 0) + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const n = (this.#pending.get(key) ?? 1) - 1;
      if (n > 0) this.#pending.set(key, n);
      else this.#pending.delete(key);
    };
  }

  /** Commits created these keys. */
  created(n: number): void {
    this.#stored += n;
  }

  /** An administrator deleted keys: their places are free. */
  deleted(n: number): void {
    this.#stored = Math.max(0, this.#stored - n);
  }
}

/**
 * The store as the batcher sees it, telling `limit` which keys each commit
 * created (its plain increment, or the day store's commit with visitors): a
 * row whose new total equals the visits added was inserted by this statement
 * (a row reset to 0 by an administrator and counted again is taken for a new
 * one: an overestimate the next recount corrects). No change to the
 * statements themselves.
 */
export function keyCountingStore<S extends CounterStore>(store: S, limit: KeyLimit): S {
  const created = (counts: ReadonlyMap<string, number>, totals: Iterable<[string, number]>) => {
    let n = 0;
    for (const [key, total] of totals) if (counts.has(key) && total === counts.get(key)) n++;
    if (n > 0) limit.created(n);
  };
  const increment: CounterStore["increment"] = async (counts) => {
    const totals = await store.increment(counts);
    created(counts, totals);
    return totals;
  };
  const inner = store.day;
  const day: DayStore | undefined = inner && {
    ...inner,
    async commit(counts, batch) {
      const committed = await inner.commit(counts, batch);
      created(counts, [...committed].map(([key, c]) => [key, c.total] as [string, number]));
      return committed;
    },
  };
  return new Proxy(store, {
    get: (target, prop, receiver) => (prop === "increment" ? increment : prop === "day" ? day : Reflect.get(target, prop, receiver)),
  });
}
