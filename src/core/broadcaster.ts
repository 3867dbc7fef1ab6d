import type { Clock, TimerHandle } from "./ports.ts";

// Coalesced broadcast (DESIGN.md §5): however many visits and closes touch a
// key within one interval, its watchers get one update with the latest
// numbers. A key touched after a quiet spell goes out at once (next tick), so
// a lone visit is not delayed by the interval.
//
// The gap between rounds also stretches with the cost of the last round: a
// round that took d ms to write is followed by at least 2d ms of quiet, so
// fan-out never takes more than a third of the CPU however many sockets are
// joined (at a fixed 25 ms, a 5,000-socket burst on 2 cores became a
// broadcast storm that starved the handshakes: bench/NOTES.md).

export class Broadcaster {
  #dirty = new Set<string>();
  #timer: TimerHandle | null = null;
  #last = Number.NEGATIVE_INFINITY;
  #gap: number;
  readonly #intervalMs: number;
  readonly #clock: Clock;
  readonly #emit: (key: string) => void;

  constructor(intervalMs: number, clock: Clock, emit: (key: string) => void) {
    this.#intervalMs = intervalMs;
    this.#clock = clock;
    this.#emit = emit;
    this.#gap = intervalMs;
  }

  touch(key: string): void {
    this.#dirty.add(key);
    if (this.#timer !== null) return;
    const delay = Math.max(0, this.#last + this.#gap - this.#clock.now());
    this.#timer = this.#clock.setTimeout(() => this.flush(), delay);
  }

  /** Emits every dirty key now. */
  flush(): void {
    if (this.#timer !== null) this.#clock.clearTimeout(this.#timer);
    this.#timer = null;
    const started = this.#clock.now();
    const keys = this.#dirty;
    this.#dirty = new Set();
    for (const key of keys) this.#emit(key);
    this.#last = this.#clock.now();
    this.#gap = Math.max(this.#intervalMs, 2 * (this.#last - started));
  }

  stop(): void {
    if (this.#timer !== null) this.#clock.clearTimeout(this.#timer);
    this.#timer = null;
    this.#dirty.clear();
  }
}
