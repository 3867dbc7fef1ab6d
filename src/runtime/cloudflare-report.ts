import type * as CF from "@cloudflare/workers-types/index.ts";
import { Broadcaster } from "../core/broadcaster.ts";
import { HeadcountError } from "../core/errors.ts";
import type { Logger } from "../core/ports.ts";
import type { DayBatch } from "../core/visitors.ts";
import { systemClock } from "./clock.ts";

// A room's reports to the index object (cloudflare-index.ts): its key's total
// and online now, coalesced to at most one per REPORT_INTERVAL_MS, one in
// flight, always the latest numbers; a failed report is sent again.

/** The index object's name; a control character, so never a counter's key. */
export const INDEX_OBJECT = "\u0000index";
/** A room tells the index about its key at most this often. */
export const REPORT_INTERVAL_MS = 1000;

export interface Report {
  key: string;
  /** Null when the room has not learnt its total yet (woken by a close): online only. */
  total: number | null;
  online: number;
  /** An administrator set the total: take it even if it is lower. */
  reset?: boolean;
  /** The key's visitors and bots today as the room knows them, for the dashboard's list. */
  today?: { day: string; visitors: number; bots: number };
  /** The server's numbers this room added since its last report, per day (objects' own SQLite only). */
  days?: ServerDay[];
}

/** What one room adds to the server's day: visits, bots, and the server-wide hashes of its people (core/visitors.ts). */
export interface ServerDay {
  day: string;
  visits: number;
  bots: number;
  hashes: string[];
}

/**
 * Registers a key with the index before its object stores anything (see
 * CounterIndex #known), or throws the index's refusal past MAX_KEYS (403
 * key_limit), which the object answers before any upgrade or stream.
 */
export async function registerKey(index: CF.DurableObjectNamespace, key: string): Promise<void> {
  const stub = index.get(index.idFromName(INDEX_OBJECT));
  const res = await stub.fetch(`https://index/register?key=${encodeURIComponent(key)}`, { method: "POST" });
  if (res.status === 403) {
    const body = (await res.json()) as { error: string; message: string };
    throw new HeadcountError(403, body.error, body.message);
  }
  if (!res.ok) throw new Error(`index refused the key (${res.status})`);
  await res.arrayBuffer();
}

/** An administrator deleted the key: it leaves the index, and its place under MAX_KEYS is free. */
export async function forgetKey(index: CF.DurableObjectNamespace, key: string): Promise<void> {
  const stub = index.get(index.idFromName(INDEX_OBJECT));
  const res = await stub.fetch(`https://index/forget?key=${encodeURIComponent(key)}`, { method: "POST" });
  if (!res.ok) throw new Error(`index did not forget the key (${res.status})`);
  await res.arrayBuffer();
}

/**
 * A key's object's standing with the index (MAX_KEYS): it registers before
 * its first write, and after an admin delete it neither reports (which would
 * put the key back in the index) nor writes until it has registered again.
 * In memory: an object evicted after a delete has tables, and does not
 * register again (README "Keys, history and resume tokens").
 */
export class KeyRegistration {
  readonly #index: CF.DurableObjectNamespace;
  #forgotten = false;
  constructor(index: CF.DurableObjectNamespace) {
    this.#index = index;
  }
  /** Whether the room's numbers go to the index. */
  get reporting(): boolean {
    return !this.#forgotten;
  }
  /** Before a write: registers when the object is new (`fresh`) or its key was deleted. */
  async ensure(key: string, fresh: () => boolean): Promise<void> {
    if (!this.#forgotten && !fresh()) return;
    await registerKey(this.#index, key);
    this.#forgotten = false;
  }
  /** After an admin delete. */
  async forget(key: string): Promise<void> {
    this.#forgotten = true;
    await forgetKey(this.#index, key);
  }
}

/** The day's visitor salt, made and kept by the index object so every key's object hashes alike. */
export async function daySalt(index: CF.DurableObjectNamespace, day: string): Promise<string> {
  const stub = index.get(index.idFromName(INDEX_OBJECT));
  const res = await stub.fetch(`https://index/salt?day=${encodeURIComponent(day)}`);
  if (!res.ok) throw new Error(`the day's salt is unavailable (${res.status})`);
  return ((await res.json()) as { salt: string }).salt;
}

export class IndexReporter {
  readonly #index: CF.DurableObjectNamespace;
  readonly #log: Logger;
  readonly #numbers: () => Report | null;
  readonly #timer: Broadcaster;
  #sending = false;
  #again = false;
  #reset = false;
  /** Server-wide numbers not yet taken by the index, oldest day first. */
  #days: ServerDay[] = [];

  /** `numbers` reads the room's current numbers when a report goes out (null: nothing to say yet). */
  constructor(index: CF.DurableObjectNamespace, log: Logger, numbers: () => Report | null) {
    this.#index = index;
    this.#log = log;
    this.#numbers = numbers;
    this.#timer = new Broadcaster(REPORT_INTERVAL_MS, systemClock, () => void this.#send());
  }

  /** A commit of this object's key: its visits, bots and server-wide hashes go to the server's day. */
  addCommit(counts: ReadonlyMap<string, number>, batch: DayBatch): void {
    let visits = 0;
    for (const n of counts.values()) visits += n;
    let bots = 0;
    for (const n of batch.bots.values()) bots += n;
    this.addDay(batch.day, visits, bots, batch.server);
  }

  /** A commit's share of the server's day, sent with the next report. */
  addDay(day: string, visits: number, bots: number, hashes: readonly string[]): void {
    let entry = this.#days.find((d) => d.day === day);
    if (!entry) this.#days.push((entry = { day, visits: 0, bots: 0, hashes: [] }));
    entry.visits += visits;
    entry.bots += bots;
    for (const h of hashes) entry.hashes.push(h);
    this.touch();
  }

  /** Something changed; `reset`: an administrator set the total. */
  touch(reset = false): void {
    this.#reset ||= reset;
    this.#timer.touch("");
  }

  async #send(): Promise<void> {
    if (this.#sending) {
      this.#again = true;
      return;
    }
    const report = this.#numbers();
    if (!report) return;
    this.#sending = true;
    const reset = this.#reset;
    this.#reset = false;
    const days = this.#days;
    this.#days = [];
    try {
      const stub = this.#index.get(this.#index.idFromName(INDEX_OBJECT));
      const body: Report = days.length > 0 ? { ...report, reset, days } : { ...report, reset };
      const res = await stub.fetch("https://index/report", { method: "POST", body: JSON.stringify(body) });
      if (!res.ok) throw new Error(`index answered ${res.status}`);
      await res.arrayBuffer();
    } catch (err) {
      this.#reset ||= reset;
      // Sent again with the next report: the index counts hashes once, and visits and bots are only ever added here.
      for (const d of days.reverse()) {
        const entry = this.#days.find((e) => e.day === d.day);
        if (entry) {
          entry.visits += d.visits;
          entry.bots += d.bots;
          entry.hashes.push(...d.hashes);
        } else this.#days.unshift(d);
      }
      this.#again = true;
      this.#log.debug("index report failed", { err });
    } finally {
      this.#sending = false;
      if (this.#again) {
        this.#again = false;
        this.#timer.touch("");
      }
    }
  }
}
