import type { Config } from "../core/config.ts";
import type { Hub } from "../core/hub.ts";
import { Counter, Gauge, type Registry } from "../core/metrics.ts";
import type { Clock, HttpPoster, Logger, Outbox } from "../core/ports.ts";
import { OnlineTrigger } from "../core/webhook-trigger.ts";
import { isMilestoneRule, ruleMatches } from "../core/webhook-rules.ts";
import { WebhookWorker, type HmacHex } from "../core/webhook-worker.ts";
import type { WebhookSummary } from "../routes/insights.ts";

// Webhooks on Node, Bun and Deno: milestone rules are joined by the store's
// increment; online thresholds are watched as the hub's updates go out; a
// worker pool delivers the outbox.

export interface WebhookStore {
  outbox: Outbox;
  registerWebhookRules(rules: Config["webhooks"]["rules"]): Promise<void>;
  fireMilestones(rules: Config["webhooks"]["rules"]): void;
}

export interface Webhooks {
  summary(): Promise<WebhookSummary>;
  /** Stops claiming; deliveries in flight get until the deadline. */
  stop(deadlineMs: number): Promise<void>;
}

export async function startWebhooks(
  config: Config["webhooks"],
  hub: Hub,
  store: WebhookStore,
  deps: { poster(): HttpPoster | Promise<HttpPoster>; hmac: HmacHex; clock: Clock; log: Logger; registry: Registry },
): Promise<Webhooks> {
  await store.registerWebhookRules(config.rules);
  store.fireMilestones(config.rules);
  if (config.rules.length === 0) {
    return {
      summary: async () => ({ enabled: false, pending: 0, delivered: 0, dead: 0, recentDead: [] }),
      stop: async () => {},
    };
  }
  const poster = await deps.poster();
  const worker = new WebhookWorker(config.rules, store.outbox, poster, deps.hmac, deps.clock, deps.log, {
    concurrency: config.concurrency,
    perOrigin: config.perOrigin,
    maxAttempts: config.maxAttempts,
    retryBaseMs: config.retryBaseMs,
    retryMaxMs: 5 * 60_000,
    pollMs: 250,
    idlePollMaxMs: 4000,
    lockMs: config.timeoutMs + 5000,
  });
  const trigger = new OnlineTrigger(config.rules, store.outbox, deps.log, { onFired: () => worker.wake() });
  // A key with a milestone rule moved: its increment may have written an event. (Events written
  // by other instances wait for the worker's idle poll, at most idlePollMaxMs.)
  const milestoneRules = config.rules.filter(isMilestoneRule);
  hub.updated.add((room) => {
    if (trigger.active) trigger.observe(room.key, room.online, room.total);
    if (milestoneRules.some((rule) => ruleMatches(rule, room.key))) worker.wake();
  });
  worker.start();
  const r = deps.registry;
  r.add(new Counter("headcount_webhooks_delivered_total", "Webhook events delivered by this instance", () => worker.counts.delivered));
  r.add(new Counter("headcount_webhooks_failed_attempts_total", "Webhook delivery attempts that failed", () => worker.counts.failedAttempts));
  r.add(new Counter("headcount_webhooks_dead_total", "Webhook events given up after WEBHOOK_MAX_ATTEMPTS", () => worker.counts.dead));
  r.add(new Gauge("headcount_webhooks_in_flight", "Webhook deliveries in progress", () => worker.inFlight));
  return {
    async summary() {
      const [counts, recentDead] = await Promise.all([store.outbox.summary(), store.outbox.recentDead(20)]);
      return { enabled: true, ...counts, recentDead };
    },
    async stop(deadlineMs) {
      await worker.stop(deadlineMs);
      await poster.close().catch(() => {});
    },
  };
}
