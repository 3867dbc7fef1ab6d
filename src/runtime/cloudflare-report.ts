import type * as CF from "@cloudflare/workers-types/index.ts";
import { Broadcaster } from "../core/broadcaster.ts";
import { HeadcountError } from "../core/errors.ts";
import type { Logger } from "../core/ports.ts";
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

export class IndexReporter {
  readonly #index: CF.DurableObjectNamespace;
  readonly #log: Logger;
  readonly #numbers: () => Report | null;
  readonly #timer: Broadcaster;
  #sending = false;
  #again = false;
  #reset = false;

  /** `numbers` reads the room's current numbers when a report goes out (null: nothing to say yet). */
  constructor(index: CF.DurableObjectNamespace, log: Logger, numbers: () => Report | null) {
    this.#index = index;
    this.#log = log;
    this.#numbers = numbers;
    this.#timer = new Broadcaster(REPORT_INTERVAL_MS, systemClock, () => void this.#send());
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
    try {
      const stub = this.#index.get(this.#index.idFromName(INDEX_OBJECT));
      const res = await stub.fetch("https://index/report", { method: "POST", body: JSON.stringify({ ...report, reset }) });
      await res.arrayBuffer();
    } catch (err) {
      this.#reset ||= reset;
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
