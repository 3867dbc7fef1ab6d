// Small shared fakes for the unit tests of core/. Like the rest of core/, this
// file imports no runtime and does no I/O; everything is in memory and driven
// by the test (time only moves when a test calls advance).

import type { Clock, CounterStore, Logger, Peer, Signer, TimerHandle } from "./ports.ts";

// ---------------------------------------------------------------------------
// Clock

interface FakeTimer {
  id: number;
  due: number;
  fn: () => void;
}

/** A Clock whose time only moves when the test says so. */
export class FakeClock implements Clock {
  #now: number;
  #nextId = 1;
  #timers: FakeTimer[] = [];

  constructor(start = 1_700_000_000_000) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const id = this.#nextId++;
    this.#timers.push({ id, due: this.#now + Math.max(0, ms), fn });
    return id;
  }

  clearTimeout(handle: TimerHandle): void {
    this.#timers = this.#timers.filter((t) => t.id !== handle);
  }

  /** Timers scheduled and not yet run or cleared. */
  get pendingTimers(): number {
    return this.#timers.length;
  }

  /** Due time of the earliest pending timer, or null. */
  nextDue(): number | null {
    const next = this.#peek();
    return next ? next.due : null;
  }

  /**
   * Moves time forward by `ms`, running every timer that falls due on the way
   * in due order (ties in the order they were set), each with `now()` equal to
   * its due time. Timers set by a running timer run too if they fall due
   * within the window.
   */
  advance(ms: number): void {
    const target = this.#now + ms;
    for (;;) {
      const next = this.#peek();
      if (!next || next.due > target) break;
      this.#fire(next);
    }
    this.#now = target;
  }

  /**
   * Like advance, but lets promise callbacks run after every timer, so work
   * that a timer starts (a retried commit, a flush loop) can set further
   * timers within the same window.
   */
  async advanceAsync(ms: number): Promise<void> {
    const target = this.#now + ms;
    await settle();
    for (;;) {
      const next = this.#peek();
      if (!next || next.due > target) break;
      this.#fire(next);
      await settle();
    }
    this.#now = target;
    await settle();
  }

  #peek(): FakeTimer | undefined {
    let best: FakeTimer | undefined;
    for (const t of this.#timers) if (!best || t.due < best.due || (t.due === best.due && t.id < best.id)) best = t;
    return best;
  }

  #fire(timer: FakeTimer): void {
    this.#timers = this.#timers.filter((t) => t !== timer);
    this.#now = Math.max(this.#now, timer.due);
    timer.fn();
  }
}

/**
 * Lets every pending promise callback run: a real macrotask turn comes only
 * after the microtask queue is empty. (A test helper; core never uses it.)
 */
export function settle(): Promise<void> {
  return new Promise((resolve) => globalThis.setTimeout(resolve, 0));
}

// ---------------------------------------------------------------------------
// Peer

/** A socket that records what it was sent (parsed JSON) and how it was closed. */
export class FakePeer implements Peer {
  readonly name: string;
  /** Every message sent while open, parsed. */
  readonly sent: Array<Record<string, unknown>> = [];
  /** The same, as sent on the wire. */
  readonly raw: string[] = [];
  closed: { code: number; reason: string } | null = null;
  /** Sends attempted after close (the port says they must be harmless). */
  sendsAfterClose = 0;
  /** Called on close, e.g. to play an adapter calling session.close(). */
  onClose: (() => void) | null = null;

  constructor(name = "peer") {
    this.name = name;
  }

  send(text: string): void {
    if (this.closed) {
      this.sendsAfterClose++;
      return;
    }
    this.raw.push(text);
    this.sent.push(JSON.parse(text) as Record<string, unknown>);
  }

  close(code: number, reason: string): void {
    if (this.closed) return;
    this.closed = { code, reason };
    this.onClose?.();
  }

  /** Sent messages of one type. */
  ofType(type: string): Array<Record<string, unknown>> {
    return this.sent.filter((m) => m.type === type);
  }

  /** Forgets what was sent so far (keeps the close state). */
  clear(): void {
    this.sent.length = 0;
    this.raw.length = 0;
  }
}

// ---------------------------------------------------------------------------
// CounterStore

interface HeldIncrement {
  counts: Map<string, number>;
  resolve(totals: Map<string, number>): void;
  reject(err: Error): void;
}

/**
 * An in-memory CounterStore. An increment either applies at once, or, while
 * `hold()` is on, waits until the test settles it with `commitHeld()` (applied
 * then, like a transaction committing) or `failHeld()` (not applied). `failNext`
 * makes the next increments fail at once without applying anything.
 */
export class FakeStore implements CounterStore {
  readonly data = new Map<string, number>();
  /** Every increment call, in order, as plain objects. */
  readonly calls: Array<Record<string, number>> = [];
  /** Every totals call's keys. */
  readonly totalsCalls: string[][] = [];
  inFlight = 0;
  maxInFlight = 0;
  /** Error thrown by totals() when set. */
  totalsError: Error | null = null;
  #holding = false;
  #held: HeldIncrement[] = [];
  #failNext = 0;

  constructor(initial: Record<string, number> = {}) {
    for (const [k, v] of Object.entries(initial)) this.data.set(k, v);
  }

  /** Subsequent increments wait for commitHeld / failHeld. */
  hold(): void {
    this.#holding = true;
  }

  /** Stops holding; increments already held still wait to be settled. */
  unhold(): void {
    this.#holding = false;
  }

  /** Increments waiting to be settled. */
  get held(): number {
    return this.#held.length;
  }

  /** The next `n` increments reject without applying anything. */
  failNext(n = 1): void {
    this.#failNext = n;
  }

  increment(counts: ReadonlyMap<string, number>): Promise<Map<string, number>> {
    const copy = new Map(counts);
    this.calls.push(Object.fromEntries(copy));
    if (this.#failNext > 0) {
      this.#failNext--;
      return Promise.reject(new Error("store unavailable"));
    }
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    return new Promise((resolve, reject) => {
      const held: HeldIncrement = {
        counts: copy,
        resolve: (t) => {
          this.inFlight--;
          resolve(t);
        },
        reject: (e) => {
          this.inFlight--;
          reject(e);
        },
      };
      if (this.#holding) this.#held.push(held);
      else held.resolve(this.#apply(copy));
    });
  }

  /** Commits the oldest held increment. */
  commitHeld(): void {
    const held = this.#held.shift();
    if (!held) throw new Error("no held increment");
    held.resolve(this.#apply(held.counts));
  }

  /** Fails the oldest held increment; nothing is applied. */
  failHeld(err: Error = new Error("connection lost")): void {
    const held = this.#held.shift();
    if (!held) throw new Error("no held increment");
    held.reject(err);
  }

  async totals(keys: readonly string[]): Promise<Map<string, number>> {
    this.totalsCalls.push([...keys]);
    if (this.totalsError) throw this.totalsError;
    return new Map(keys.map((k) => [k, this.data.get(k) ?? 0]));
  }

  async ping(): Promise<void> {}

  async close(): Promise<void> {}

  #apply(counts: Map<string, number>): Map<string, number> {
    const out = new Map<string, number>();
    for (const [k, n] of counts) {
      const total = (this.data.get(k) ?? 0) + n;
      this.data.set(k, total);
      out.set(k, total);
    }
    return out;
  }
}

// ---------------------------------------------------------------------------
// Logger and Signer

const noop = (): void => {};

/** Drops everything. */
export const silentLogger: Logger = { debug: noop, info: noop, warn: noop, error: noop };

/**
 * A deterministic keyed MAC for tests (FNV-1a over secret and message, twice
 * with different seeds). Not cryptographic; the runtimes use HMAC-SHA256.
 */
export function fakeSigner(secret = "test-secret-0123456789"): Signer {
  const fnv = (seed: number, text: string): string => {
    let h = seed >>> 0;
    for (let i = 0; i < text.length; i++) {
      h ^= text.charCodeAt(i);
      h = Math.imul(h, 0x01000193) >>> 0;
    }
    return h.toString(16).padStart(8, "0");
  };
  return { sign: (message) => fnv(0x811c9dc5, `${secret}\u0000${message}`) + fnv(0x050c5d1f, `${message}\u0000${secret}`) };
}
