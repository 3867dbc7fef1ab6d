// Shared by the baseline servers (Node and Bun): the same group-commit
// statement headcount runs (src/db/store.ts incrementQuery: counters plus the
// per-minute history row in one statement), written for postgres.js with
// arrays instead of Drizzle, and the listening line the bench waits for.
import { createHmac } from "node:crypto";

export const GROUP_COMMIT_SQL = `
  with batch(key, n) as (select * from unnest($1::text[], $2::bigint[])),
  bumped as (
    insert into counters as c (key, total, updated_at)
    select key, n, now() from batch
    on conflict (key) do update set total = c.total + excluded.total, updated_at = excluded.updated_at
    returning c.key, c.total
  ),
  history as (
    insert into visits_per_minute as h (key, minute, visits)
    select key, date_trunc('minute', now()), n from batch
    on conflict (key, minute) do update set visits = h.visits + excluded.visits
  )
  select key, total::text as total from bumped`;

/** The seed design: one statement per visit. */
export const SEED_SQL = `
  insert into counters as c (key, total, updated_at) values ($1, 1, now())
  on conflict (key) do update set total = c.total + 1, updated_at = now()
  returning total::text as total`;

export function env(name: string, fallback: string): string {
  const v = process.env[name];
  return v === undefined || v === "" ? fallback : v;
}

/** Same token shape and cost as headcount's resume token (one HMAC-SHA256 per visit). */
export function token(secret: string, key: string, visitor: number, ttlS = 3600): string {
  const exp = Math.floor(Date.now() / 1000) + ttlS;
  const mac = createHmac("sha256", secret).update(`${key}\n${visitor}\n${exp}`).digest("base64url").slice(0, 22);
  return `${visitor}.${exp}.${mac}`;
}

export function keyOf(url: string | undefined): string | null {
  const q = (url ?? "").indexOf("?");
  if (q < 0) return "/";
  const key = new URLSearchParams(url!.slice(q + 1)).get("key") ?? "/";
  return key.length === 0 || key.length > 256 ? null : key;
}

export function listening(port: number, name: string): void {
  process.stdout.write(JSON.stringify({ msg: "listening", port, server: name }) + "\n");
}

/** Coalesced broadcast, same rule as src/core/broadcaster.ts (interval stretched by round cost). */
export class Coalescer {
  #dirty = new Set<string>();
  #timer: ReturnType<typeof setTimeout> | null = null;
  #last = -Infinity;
  #gap = 0;
  readonly intervalMs: number;
  readonly emit: (key: string) => void;
  constructor(intervalMs: number, emit: (key: string) => void) {
    this.intervalMs = intervalMs;
    this.emit = emit;
    this.#gap = intervalMs;
  }
  touch(key: string): void {
    this.#dirty.add(key);
    if (this.#timer !== null) return;
    const delay = Math.max(0, this.#last + this.#gap - performance.now());
    this.#timer = setTimeout(() => this.flush(), delay);
  }
  flush(): void {
    this.#timer = null;
    const started = performance.now();
    const keys = this.#dirty;
    this.#dirty = new Set();
    for (const key of keys) this.emit(key);
    this.#last = performance.now();
    // Same rule as headcount's broadcaster: a round that took d ms is followed
    // by at least 2d ms of quiet, so fan-out cannot starve the handshakes.
    this.#gap = Math.max(this.intervalMs, 2 * (this.#last - started));
  }
}

/**
 * Group commit, same rule as src/core/batcher.ts: visits arriving while a
 * commit is in flight are summed per key; at most one commit in flight.
 */
export class GroupCommit<T> {
  #pending = new Map<string, T[]>();
  #inFlight = false;
  #scheduled = false;
  readonly run: (keys: string[], counts: number[]) => Promise<Map<string, number>>;
  readonly done: (key: string, total: number, waiters: T[]) => void;
  constructor(
    run: (keys: string[], counts: number[]) => Promise<Map<string, number>>,
    done: (key: string, total: number, waiters: T[]) => void,
  ) {
    this.run = run;
    this.done = done;
  }
  add(key: string, w: T): void {
    const l = this.#pending.get(key);
    if (l) l.push(w);
    else this.#pending.set(key, [w]);
    this.#kick();
  }
  #kick(): void {
    if (this.#inFlight || this.#scheduled) return;
    this.#scheduled = true;
    queueMicrotask(() => {
      this.#scheduled = false;
      if (!this.#inFlight) void this.#commit();
    });
  }
  async #commit(): Promise<void> {
    const batch = this.#pending;
    if (batch.size === 0) return;
    this.#pending = new Map();
    this.#inFlight = true;
    const keys = [...batch.keys()].sort();
    try {
      const totals = await this.run(
        keys,
        keys.map((k) => batch.get(k)!.length),
      );
      for (const k of keys) this.done(k, totals.get(k)!, batch.get(k)!);
    } catch (err) {
      // Baselines do not retry: put the batch back and try again shortly.
      console.error("commit failed", err);
      for (const [k, l] of batch) this.#pending.set(k, l.concat(this.#pending.get(k) ?? []));
      await new Promise((r) => setTimeout(r, 100));
    } finally {
      this.#inFlight = false;
      if (this.#pending.size > 0) this.#kick();
    }
  }
}
