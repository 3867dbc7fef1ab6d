import { HeadcountError } from "./errors.ts";
import type { Clock } from "./ports.ts";

/** The database is saturated: a caller waited longer than the acquire timeout. */
export class PoolTimeoutError extends HeadcountError {
  constructor(ms: number) {
    super(503, "database_busy", `database busy: no connection within ${ms} ms`);
    this.name = "PoolTimeoutError";
  }
}

interface Waiter {
  resolve(): void;
  reject(e: Error): void;
  timer: unknown;
}

/**
 * Bounds work in flight with a bounded wait. postgres.js queues queries
 * without limit when its pool is busy; this turns overload into fast, clear
 * errors instead of a growing queue.
 */
export class Semaphore {
  readonly #max: number;
  readonly #timeoutMs: number;
  readonly #clock: Clock;
  readonly #queue: Waiter[] = [];
  #inUse = 0;
  timeouts = 0;

  constructor(max: number, timeoutMs: number, clock: Clock) {
    this.#max = max;
    this.#timeoutMs = timeoutMs;
    this.#clock = clock;
  }

  get inUse(): number {
    return this.#inUse;
  }

  get waiting(): number {
    return this.#queue.length;
  }

  async run<T>(fn: () => Promise<T>): Promise<T> {
    await this.#acquire();
    try {
      return await fn();
    } finally {
      this.#release();
    }
  }

  #acquire(): Promise<void> {
    if (this.#inUse < this.#max) {
      this.#inUse++;
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = {
        resolve,
        reject,
        timer: this.#clock.setTimeout(() => {
          const i = this.#queue.indexOf(waiter);
          if (i >= 0) this.#queue.splice(i, 1);
          this.timeouts++;
          reject(new PoolTimeoutError(this.#timeoutMs));
        }, this.#timeoutMs),
      };
      this.#queue.push(waiter);
    });
  }

  #release(): void {
    const next = this.#queue.shift();
    if (next) {
      this.#clock.clearTimeout(next.timer);
      next.resolve(); // the slot passes straight to the next waiter
    } else {
      this.#inUse--;
    }
  }
}
