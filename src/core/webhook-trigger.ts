import type { Logger, Outbox } from "./ports.ts";
import { ruleMatches, type WebhookRule } from "./webhook-rules.ts";

// Online thresholds with hysteresis. Each instance sees the global online
// count (its own sockets plus the others'), so every instance may notice the
// same crossing; the database's armed flag lets exactly one of them write the
// event. Locally we only remember which side of the lines a key was last on,
// so the database is asked once per crossing, not per update.
//
// That memory is a cache of the database's answer, bounded by `capacity`
// (least recently updated dropped first), since keys come from strangers.
// Forgetting a key costs at most one extra statement, never an event: above
// the line, fireOnline finds the rule disarmed and writes nothing; below it,
// rearm arms what is already armed.

type Side = "high" | "low";

export interface OnlineTriggerOptions {
  /** Rule-and-key pairs remembered at most (default 10,000). */
  capacity?: number;
  /** An event was written: the delivery worker may look at once. */
  onFired?: () => void;
}

export class OnlineTrigger {
  readonly #rules: WebhookRule[];
  readonly #outbox: Outbox;
  readonly #log: Logger;
  readonly #capacity: number;
  readonly #onFired: () => void;
  /** `${rule index}\n${key}`; insertion order is recency. */
  readonly #side = new Map<string, Side>();

  constructor(rules: readonly WebhookRule[], outbox: Outbox, log: Logger, opts: OnlineTriggerOptions = {}) {
    this.#rules = rules.filter((r) => r.online !== undefined);
    this.#outbox = outbox;
    this.#log = log;
    this.#capacity = opts.capacity ?? 10_000;
    this.#onFired = opts.onFired ?? (() => {});
  }

  get active(): boolean {
    return this.#rules.length > 0;
  }

  /** Rule-and-key pairs remembered now. */
  get size(): number {
    return this.#side.size;
  }

  observe(key: string, online: number, total: number): void {
    for (const [i, rule] of this.#rules.entries()) {
      if (!ruleMatches(rule, key)) continue;
      const id = `${i}\n${key}`;
      const side = this.#side.get(id);
      const threshold = rule.online!;
      if (online >= threshold && side !== "high") {
        this.#remember(id, "high");
        this.#outbox.fireOnline(rule.id, key, threshold, online, total).then(
          (fired) => fired && this.#onFired(),
          (err: unknown) => {
            this.#side.delete(id); // try again on the next update
            this.#log.warn("webhook: online event not recorded", { err });
          },
        );
      } else if (online < threshold - rule.hysteresis && side !== "low") {
        this.#remember(id, "low");
        this.#outbox.rearm(rule.id, key).catch((err: unknown) => {
          this.#side.delete(id);
          this.#log.warn("webhook: re-arm failed", { err });
        });
      } else if (side !== undefined) {
        this.#remember(id, side); // recently seen: keep it over quieter keys
      }
    }
  }

  #remember(id: string, side: Side): void {
    this.#side.delete(id);
    this.#side.set(id, side);
    if (this.#side.size > this.#capacity) this.#side.delete(this.#side.keys().next().value!);
  }
}
