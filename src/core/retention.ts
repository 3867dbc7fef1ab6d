import type { Clock, Logger, TimerHandle } from "./ports.ts";

// HISTORY_RETENTION_DAYS (DESIGN.md §3): per-minute history older than the
// retention is deleted in the background, at start and then every interval,
// in bounded batches with a pause between them, so neither a database lock
// nor (on the embedded SQLite, whose statements are synchronous) the event
// loop is held for long, however much has piled up.

export const DAY_MS = 86_400_000;

export interface RetentionOptions {
  days: number;
  /** Rows per delete statement. */
  batch: number;
  /** Between runs. */
  intervalMs: number;
  /** Least pause between batches of one run (it is at least the batch's own time): commits and sockets get their turn. */
  pauseMs: number;
}

export const RETENTION_DEFAULTS = { batch: 5000, intervalMs: 3_600_000, pauseMs: 10 } as const;

/** Deletes at most `limit` rows older than `before` (epoch ms) and returns how many. */
export type Prune = (before: number, limit: number) => Promise<number>;

export class HistoryRetention {
  /** Rows deleted since start (the metric). */
  pruned = 0;
  readonly #prune: Prune;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #opts: RetentionOptions;
  #timer: TimerHandle | null = null;
  #running: Promise<number> | null = null;
  #stopped = false;

  constructor(prune: Prune, clock: Clock, log: Logger, opts: RetentionOptions) {
    this.#prune = prune;
    this.#clock = clock;
    this.#log = log;
    this.#opts = opts;
  }

  /** A run now, then one every interval. */
  start(): void {
    const tick = () => {
      this.#timer = null;
      void this.run().finally(() => {
        if (!this.#stopped) this.#timer = this.#clock.setTimeout(tick, this.#opts.intervalMs);
      });
    };
    tick();
  }

  /** One run: batches until one comes back short. Resolves with the rows deleted; never rejects. */
  run(): Promise<number> {
    this.#running ??= this.#run().finally(() => (this.#running = null));
    return this.#running;
  }

  async #run(): Promise<number> {
    const before = this.#clock.now() - this.#opts.days * DAY_MS;
    let deleted = 0;
    try {
      for (;;) {
        const started = this.#clock.now();
        const n = await this.#prune(before, this.#opts.batch);
        deleted += n;
        this.pruned += n;
        if (n < this.#opts.batch || this.#stopped) break;
        // At least as long as the batch took: on the embedded SQLite a batch holds the event loop
        // (~35 ms for 5,000 rows with its fsync), so pruning never takes more than half of it.
        const pause = Math.max(this.#opts.pauseMs, this.#clock.now() - started);
        await new Promise<void>((resolve) => this.#clock.setTimeout(resolve, pause));
      }
      if (deleted > 0) this.#log.info("history pruned", { rows: deleted, older_than_days: this.#opts.days });
    } catch (err) {
      // The next run tries again (the database may be away for now).
      this.#log.warn("history pruning failed", { err, rows: deleted });
    }
    return deleted;
  }

  /** No further batches or runs; resolves when a batch in flight is done. */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer !== null) this.#clock.clearTimeout(this.#timer);
    this.#timer = null;
    await this.#running;
  }
}
