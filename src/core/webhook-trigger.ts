import type { Logger, Outbox } from "./ports.ts";
import { ruleMatches, type WebhookRule } from "./webhook-rules.ts";

// Online thresholds with hysteresis. Each instance sees the global online
// count (its own sockets plus the others'), so every instance may notice the
// same crossing; the database's armed flag lets exactly one of them write the
// event. Locally we only remember which side of the lines a key was last on,
// so the database is asked once per crossing, not per update.

type Side = "high" | "low";

export class OnlineTrigger {
  readonly #rules: WebhookRule[];
  readonly #outbox: Outbox;
  readonly #log: Logger;
  readonly #side = new Map<string, Side>(); // `${rule.id}\n${key}`

  constructor(rules: readonly WebhookRule[], outbox: Outbox, log: Logger) {
    this.#rules = rules.filter((r) => r.online !== undefined);
    this.#outbox = outbox;
    this.#log = log;
  }

  get active(): boolean {
    return this.#rules.length > 0;
  }

  observe(key: string, online: number, total: number): void {
    for (const rule of this.#rules) {
      if (!ruleMatches(rule, key)) continue;
      const id = `${rule.id}\n${key}`;
      const side = this.#side.get(id);
      const threshold = rule.online!;
      if (online >= threshold && side !== "high") {
        this.#side.set(id, "high");
        this.#outbox.fireOnline(rule.id, key, threshold, online, total).catch((err: unknown) => {
          this.#side.delete(id); // try again on the next update
          this.#log.warn("webhook: online event not recorded", { err });
        });
      } else if (online < threshold - rule.hysteresis && side !== "low") {
        if (online === 0) this.#side.delete(id);
        else this.#side.set(id, "low");
        this.#outbox.rearm(rule.id, key).catch((err: unknown) => {
          this.#side.delete(id);
          this.#log.warn("webhook: re-arm failed", { err });
        });
      }
    }
  }
}
