import { backoffMs } from "./backoff.ts";
import { CommitTimeoutError } from "./errors.ts";
import type { Clock, CounterStore, KeyCommit, Logger } from "./ports.ts";
import { SERVER_KEY, utcDay, type DayBatch, type VisitorIds, type Who } from "./visitors.ts";

// Group commit (DESIGN.md §5). Visits that arrive while a commit is in flight
// are summed per key and go in the next statement, so one client alone pays
// one round trip and ten thousand arriving at once cost a handful of
// statements. At most one commit is in flight per store.

export interface Committed {
  key: string;
  /** The key's total right after the commit that carried this visit. */
  total: number;
  /** This visit's own number: distinct per key, in arrival order within a batch; 0 for a bot, which is no visit. */
  visitor: number;
  /** The key's numbers for `day` after the commit, where the store keeps days. */
  today?: { day: string; visitors: number; bots: number };
}

interface Waiter {
  resolve(c: Committed): void;
  reject(e: Error): void;
  enqueuedAt: number;
  who: Who | undefined;
}

export interface BatcherOptions {
  /** A visit not committed within this long is refused to its client. */
  commitTimeoutMs: number;
  /** First retry delay after a failed commit; doubles up to maxBackoffMs. */
  minBackoffMs?: number;
  maxBackoffMs?: number;
  /** Keys per statement; a larger backlog is split over several commits. */
  maxKeysPerCommit?: number;
  /**
   * How long a batch gathers visits before its commit starts. 0 (default):
   * the current tick only, which suits a store whose commit is a network
   * round trip, since visits pile up while it is in flight. A synchronous
   * store (the embedded SQLite file) commits within the tick, so nothing
   * piles up: it gathers for `gatherMs`, and after a commit that held the
   * event loop for d ms it waits at least d, so commits (and their fsyncs)
   * never take more than half of the loop, however hard a burst pushes.
   */
  gatherMs?: number;
  /**
   * Hashes the people of a batch for the day's visitors (core/visitors.ts);
   * used when the store keeps days (CounterStore.day).
   */
  visitors?: VisitorIds;
  onCommit?(keys: number, visits: number): void;
  /** A commit carried bots, and this many new server-wide visitors as this instance saw them. */
  onDay?(bots: number, freshVisitors: number): void;
  /** A commit with its day's batch went through (a Durable Object passes the server's share to its index). */
  committedDay?(counts: ReadonlyMap<string, number>, batch: DayBatch): void;
  /** The first commit of a UTC day (and the first after start): time for the roll-up of the days before. */
  onNewDay?(day: string): void;
}

export class WriteBatcher {
  #pending = new Map<string, Waiter[]>();
  #inFlight: Promise<void> | null = null;
  #scheduled = false;
  #retryTimer: unknown = null;
  #failures = 0;
  /** How long the last commit took (ms), for gatherMs. */
  #lastCommitMs = 0;
  readonly #store: CounterStore;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #opts: Required<Omit<BatcherOptions, "onCommit" | "onDay" | "onNewDay" | "visitors" | "committedDay">> &
    Pick<BatcherOptions, "onCommit" | "onDay" | "onNewDay" | "visitors" | "committedDay">;
  /** The day of the last commit, and the server's visitors it reported (for onDay's fresh count). */
  #day: { day: string; visitors: number } | null = null;

  constructor(store: CounterStore, clock: Clock, log: Logger, opts: BatcherOptions) {
    this.#store = store;
    this.#clock = clock;
    this.#log = log;
    this.#opts = { minBackoffMs: 50, maxBackoffMs: 2000, maxKeysPerCommit: 500, gatherMs: 0, ...opts };
  }

  /** Visits waiting for a commit (not yet acknowledged). */
  get pendingVisits(): number {
    let n = 0;
    for (const w of this.#pending.values()) n += w.length;
    return n;
  }

  /** True while the last commit attempt failed (the database is unreachable). */
  get failing(): boolean {
    return this.#failures > 0;
  }

  /** Counts one visit of `who` (absent: a visit with no visitor identity, as before issue 13); a bot is counted as a bot only. */
  add(key: string, who?: Who): Promise<Committed> {
    return new Promise<Committed>((resolve, reject) => {
      const waiter: Waiter = { resolve, reject, enqueuedAt: this.#clock.now(), who };
      const list = this.#pending.get(key);
      if (list) list.push(waiter);
      else this.#pending.set(key, [waiter]);
      this.#kick();
    });
  }

  /** Resolves once every visit added so far has committed or been refused. */
  async flush(): Promise<void> {
    while (this.#pending.size > 0 || this.#inFlight) {
      if (this.#inFlight) await this.#inFlight;
      else if (this.#retryTimer === null) await this.#commit();
      else await new Promise<void>((r) => this.#clock.setTimeout(r, 10));
    }
  }

  /** Refuses everything still pending (used when a shutdown deadline passes). */
  abandon(error: Error): void {
    if (this.#retryTimer !== null) this.#clock.clearTimeout(this.#retryTimer);
    this.#retryTimer = null;
    const pending = this.#pending;
    this.#pending = new Map();
    for (const list of pending.values()) for (const w of list) w.reject(error);
  }

  #kick(): void {
    if (this.#inFlight || this.#scheduled || this.#retryTimer !== null) return;
    this.#scheduled = true;
    const start = () => {
      this.#scheduled = false;
      if (!this.#inFlight && this.#retryTimer === null) void this.#commit();
    };
    const gather = this.#opts.gatherMs > 0 ? Math.max(this.#opts.gatherMs, this.#lastCommitMs) : 0;
    // A microtask lets every visit that arrives in the same tick share a statement.
    if (gather === 0) void Promise.resolve().then(start);
    else this.#clock.setTimeout(start, gather);
  }

  #commit(): Promise<void> {
    const batch = this.#take();
    if (batch.size === 0) return Promise.resolve();
    const run = this.#run(batch).finally(() => {
      this.#inFlight = null;
      if (this.#pending.size > 0 && this.#retryTimer === null) this.#kick();
    });
    this.#inFlight = run;
    return run;
  }

  #take(): Map<string, Waiter[]> {
    if (this.#pending.size <= this.#opts.maxKeysPerCommit) {
      const all = this.#pending;
      this.#pending = new Map();
      return all;
    }
    const batch = new Map<string, Waiter[]>();
    for (const [key, list] of this.#pending) {
      if (batch.size >= this.#opts.maxKeysPerCommit) break;
      batch.set(key, list);
      this.#pending.delete(key);
    }
    return batch;
  }

  async #run(batch: Map<string, Waiter[]>): Promise<void> {
    const counts = new Map<string, number>();
    let visits = 0;
    let bots = 0;
    for (const [key, list] of batch) {
      let n = 0;
      for (const w of list) if (!w.who?.bot) n++;
      if (n > 0) counts.set(key, n);
      visits += n;
      bots += list.length - n;
    }
    let committed: Map<string, KeyCommit>;
    let day: string | null = null;
    let dayBatch: DayBatch | null = null;
    const started = this.#clock.now();
    try {
      const dayStore = this.#store.day;
      if (dayStore && this.#opts.visitors) {
        day = utcDay(started);
        const people: Array<[string, Who]> = [];
        for (const [key, list] of batch) for (const w of list) if (w.who) people.push([key, w.who]);
        dayBatch = await this.#opts.visitors.batch(day, people);
        committed = await dayStore.commit(counts, dayBatch);
      } else {
        committed = await this.#plain(counts, batch);
      }
    } catch (err) {
      this.#failed(batch, err);
      return;
    } finally {
      this.#lastCommitMs = this.#clock.now() - started;
    }
    if (this.#failures > 0) this.#log.info("commits resumed", { after_failures: this.#failures });
    this.#failures = 0;
    this.#opts.onCommit?.(counts.size, visits);
    if (day !== null) this.#dayDone(day, bots, committed.get(SERVER_KEY)?.visitors ?? 0);
    if (dayBatch !== null) this.#opts.committedDay?.(counts, dayBatch);
    for (const [key, list] of batch) {
      const c = committed.get(key);
      if (c === undefined) {
        const err = new Error(`store returned no total for a committed key`);
        for (const w of list) w.reject(err);
        continue;
      }
      const today = day === null ? undefined : { day, visitors: c.visitors, bots: c.bots };
      let visitor = c.total - (counts.get(key) ?? 0) + 1;
      for (const w of list) w.resolve({ key, total: c.total, visitor: w.who?.bot ? 0 : visitor++, today });
    }
  }

  /** A store without days: visits only; a key that had only bots is read, not written. */
  async #plain(counts: Map<string, number>, batch: Map<string, Waiter[]>): Promise<Map<string, KeyCommit>> {
    const totals = counts.size > 0 ? await this.#store.increment(counts) : new Map<string, number>();
    const unread = [...batch.keys()].filter((k) => !counts.has(k));
    if (unread.length > 0) {
      const read = await this.#store.totals(unread);
      for (const k of unread) totals.set(k, read.get(k) ?? 0);
    }
    const out = new Map<string, KeyCommit>();
    for (const [key, total] of totals) out.set(key, { total, visitors: 0, bots: 0 });
    return out;
  }

  #dayDone(day: string, bots: number, serverVisitors: number): void {
    const last = this.#day;
    this.#day = { day, visitors: Math.max(serverVisitors, last?.day === day ? last.visitors : 0) };
    this.#opts.onDay?.(bots, last?.day === day ? Math.max(0, serverVisitors - last.visitors) : serverVisitors);
    if (last?.day !== day) this.#opts.onNewDay?.(day);
  }

  #failed(batch: Map<string, Waiter[]>, err: unknown): void {
    this.#failures++;
    const now = this.#clock.now();
    const deadline = now - this.#opts.commitTimeoutMs;
    // Failed visits go back in front of newer ones so arrival order holds.
    const merged = new Map<string, Waiter[]>();
    let expired = 0;
    for (const [key, list] of batch) {
      const keep: Waiter[] = [];
      for (const w of list) {
        if (w.enqueuedAt <= deadline) {
          w.reject(new CommitTimeoutError());
          expired++;
        } else keep.push(w);
      }
      const newer = this.#pending.get(key) ?? [];
      if (keep.length + newer.length > 0) merged.set(key, keep.concat(newer));
    }
    for (const [key, list] of this.#pending) if (!merged.has(key)) merged.set(key, list);
    this.#pending = merged;
    const delay = backoffMs(this.#failures - 1, { baseMs: this.#opts.minBackoffMs, maxMs: this.#opts.maxBackoffMs });
    if (this.#failures === 1 || this.#failures % 20 === 0) {
      this.#log.warn("commit failed; retrying", { err, failures: this.#failures, retry_ms: Math.round(delay), expired });
    }
    this.#retryTimer = this.#clock.setTimeout(() => {
      this.#retryTimer = null;
      if (!this.#inFlight) void this.#commit();
    }, delay);
  }
}
