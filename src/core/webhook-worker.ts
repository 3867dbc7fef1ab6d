import { backoffMs } from "./backoff.ts";
import type { Clock, HttpPoster, Logger, Outbox, OutboxEvent, TimerHandle } from "./ports.ts";
import type { WebhookRule } from "./webhook-rules.ts";

// Delivers outbox events: a bounded pool of deliveries, at most
// `perOrigin` at once to any one receiver (scheme, host, port), so a slow
// receiver holds its own slots and never the others'. Failures retry with
// exponential backoff and jitter up to `maxAttempts`, then the event is dead.
// Delivery is at least once: an instance that dies mid-delivery leaves the
// event locked for `lockMs`, then another claims it; receivers dedupe by the
// event id in the payload. An instance claims only events of the rules it
// runs with, so instances with different WEBHOOK_RULES on one database (a
// rolling deploy) never take, or give up on, each other's events.
//
// Polling: every `pollMs` while there is work, doubling up to `idlePollMaxMs`
// while claims come back empty (events of rules no instance has may stay
// pending for good: no reason to ask every 250 ms). `wake()` brings the next
// poll back to `pollMs` after the last one when this instance may have
// written an event; the earliest failed delivery gets a poll when it is due.

export interface WebhookWorkerOptions {
  concurrency: number;
  perOrigin: number;
  maxAttempts: number;
  retryBaseMs: number;
  retryMaxMs: number;
  /** Poll interval while there is work, and the first idle one. */
  pollMs: number;
  /** Longest interval between idle polls (default 4000 ms): the latest an event written elsewhere waits. */
  idlePollMaxMs?: number;
  /** How long a claimed event stays locked: longer than one delivery can take. */
  lockMs: number;
}

/** HMAC-SHA256 of `message` under `secret`, hex. */
export type HmacHex = (secret: string, message: string) => string;

export interface WebhookPayload {
  id: string;
  type: "milestone" | "online";
  key: string;
  milestone?: number;
  threshold?: number;
  total: number;
  online?: number;
  at: string;
}

export function payloadOf(e: OutboxEvent): WebhookPayload {
  return e.kind === "milestone"
    ? { id: e.id, type: "milestone", key: e.key, milestone: e.value, total: e.total, at: e.createdAt }
    : { id: e.id, type: "online", key: e.key, threshold: e.value, total: e.total, online: e.online ?? e.value, at: e.createdAt };
}

/** `X-Headcount-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">` */
export function signatureHeader(hmac: HmacHex, secret: string, body: string, unixSeconds: number): string {
  return `t=${unixSeconds},v1=${hmac(secret, `${unixSeconds}.${body}`)}`;
}

export type WebhookCounts = { delivered: number; failedAttempts: number; dead: number };

export class WebhookWorker {
  readonly counts: WebhookCounts = { delivered: 0, failedAttempts: 0, dead: 0 };
  readonly #rules: Map<string, WebhookRule>;
  readonly #outbox: Outbox;
  readonly #http: HttpPoster;
  readonly #hmac: HmacHex;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #opts: WebhookWorkerOptions;
  /** This instance's rule ids by receiver origin: the only events it claims. */
  readonly #byOrigin = new Map<string, string[]>();
  readonly #perOrigin = new Map<string, number>();
  #turn = 0;
  readonly #inFlight = new Set<Promise<void>>();
  /** The next poll: its timer and when it fires (epoch ms). */
  #timer: { handle: TimerHandle; due: number } | null = null;
  #stopping = false;
  #polling = false;
  /** A poll was asked for while one ran: poll again at once after it. */
  #again = false;
  /** The next idle interval: doubles while claims come back empty. */
  #idleMs: number;
  #lastPollAt = Number.NEGATIVE_INFINITY;
  /** Deliveries started, ever (whether a claim found anything). */
  #started = 0;
  /** Started as a pool (start()), rather than run by a caller (deliverDue()). */
  #pool = false;
  /** Earliest retry of a failure (epoch ms): since the last deliverDue() began, or, in the pool, not yet due. */
  #retryAt: number | null = null;

  constructor(rules: readonly WebhookRule[], outbox: Outbox, http: HttpPoster, hmac: HmacHex, clock: Clock, log: Logger, opts: WebhookWorkerOptions) {
    this.#rules = new Map(rules.map((r) => [r.id, r]));
    for (const r of this.#rules.values()) this.#byOrigin.set(r.origin, [...(this.#byOrigin.get(r.origin) ?? []), r.id]);
    this.#outbox = outbox;
    this.#http = http;
    this.#hmac = hmac;
    this.#clock = clock;
    this.#log = log;
    this.#opts = opts;
    this.#idleMs = opts.pollMs;
  }

  get inFlight(): number {
    return this.#inFlight.size;
  }

  /** The pool (Node, Bun, Deno): polls the outbox (see the header for when), and at once whenever a slot frees up. */
  start(): void {
    this.#pool = true;
    this.#schedule(0);
  }

  /** This instance may just have written an event: poll `pollMs` after the last poll at the latest, and stop backing off. */
  wake(): void {
    if (!this.#pool || this.#stopping) return;
    this.#idleMs = this.#opts.pollMs;
    this.#schedule(Math.max(0, this.#lastPollAt + this.#opts.pollMs - this.#clock.now()));
  }

  /**
   * One run over everything due now, for a caller that schedules itself (a
   * Durable Object's alarm): claims and delivers with the same slots and
   * per-receiver caps as the pool until nothing due is left. Resolves with
   * the earliest time a failed event is due again, or null.
   */
  async deliverDue(): Promise<number | null> {
    this.#retryAt = null;
    for (;;) {
      const claimed = await this.#claim();
      if (this.#inFlight.size === 0) break;
      await Promise.race(this.#inFlight);
      if (claimed === 0 && this.#inFlight.size === 0) break;
    }
    return this.#retryAt;
  }

  /** Stops claiming, then waits for deliveries in flight until `deadlineMs` from now. */
  async stop(deadlineMs: number): Promise<void> {
    this.#stopping = true;
    if (this.#timer !== null) this.#clock.clearTimeout(this.#timer.handle);
    this.#timer = null;
    const all = Promise.all([...this.#inFlight]).then(() => undefined);
    await Promise.race([all, new Promise<void>((r) => this.#clock.setTimeout(r, deadlineMs))]);
  }

  /** Polls in `ms`, unless a poll is due sooner already. */
  #schedule(ms: number): void {
    if (this.#stopping) return;
    const due = this.#clock.now() + ms;
    if (this.#timer !== null) {
      if (this.#timer.due <= due) return;
      this.#clock.clearTimeout(this.#timer.handle);
    }
    const handle = this.#clock.setTimeout(() => {
      this.#timer = null;
      void this.#poll();
    }, ms);
    this.#timer = { handle, due };
  }

  async #poll(): Promise<void> {
    if (this.#stopping) return;
    if (this.#polling) {
      this.#again = true;
      return;
    }
    this.#polling = true;
    this.#lastPollAt = this.#clock.now();
    const started = this.#started;
    let full = 0;
    try {
      full = await this.#claim();
    } finally {
      this.#polling = false;
    }
    if (full > 0 || this.#again) {
      this.#again = false;
      return this.#schedule(0);
    }
    let wait = this.#idleMs;
    if (this.#started > started || this.#inFlight.size > 0) wait = this.#idleMs = this.#opts.pollMs;
    else this.#idleMs = Math.min(wait * 2, Math.max(this.#opts.pollMs, this.#opts.idlePollMaxMs ?? 4000));
    // The earliest known retry, however long the idle wait has grown (later ones: within idlePollMaxMs).
    const now = this.#clock.now();
    if (this.#retryAt !== null && this.#retryAt <= now) this.#retryAt = null;
    this.#schedule(this.#retryAt === null ? wait : Math.min(wait, this.#retryAt - now));
  }

  /** Claims what the free slots allow, per receiver, and starts delivering; returns how many were claimed when a claim came back full (more may be due), else 0. */
  async #claim(): Promise<number> {
    let full = 0;
    try {
      // One claim per receiver, never more than its free slots, so a slow receiver holds only
      // its own slots and no receiver gets more than `perOrigin` at once, whatever the
      // runtime's HTTP client pools. The first origin asked rotates, so none always goes first.
      const origins = [...this.#byOrigin.keys()];
      this.#turn = (this.#turn + 1) % Math.max(1, origins.length);
      for (let i = 0; i < origins.length; i++) {
        const free = this.#opts.concurrency - this.#inFlight.size;
        if (free <= 0 || this.#stopping) break;
        const origin = origins[(this.#turn + i) % origins.length]!;
        const slots = Math.min(free, this.#opts.perOrigin - (this.#perOrigin.get(origin) ?? 0));
        if (slots <= 0) continue;
        const events = await this.#outbox.claim(slots, this.#opts.lockMs, this.#byOrigin.get(origin)!);
        for (const e of events) this.#start(e);
        // A full claim suggests more are due.
        if (events.length === slots) full += events.length;
      }
    } catch (err) {
      this.#log.warn("webhook: claim failed", { err });
    }
    return full;
  }

  #start(e: OutboxEvent): void {
    this.#started++;
    const rule = this.#rules.get(e.ruleId);
    const origin = rule?.origin ?? "";
    this.#perOrigin.set(origin, (this.#perOrigin.get(origin) ?? 0) + 1);
    const run = this.#deliver(e, rule).finally(() => {
      this.#inFlight.delete(run);
      const n = (this.#perOrigin.get(origin) ?? 1) - 1;
      if (n <= 0) this.#perOrigin.delete(origin);
      else this.#perOrigin.set(origin, n);
      if (this.#pool) this.#schedule(0); // a slot is free
    });
    this.#inFlight.add(run);
  }

  async #deliver(e: OutboxEvent, rule: WebhookRule | undefined): Promise<void> {
    const outcome = await deliverEvent(e, rule, this.#outbox, this.#http, this.#hmac, this.#clock, this.#log, this.#opts);
    if (outcome.result === "retry") {
      const at = this.#clock.now() + outcome.retryInMs;
      this.#retryAt = this.#retryAt === null ? at : Math.min(this.#retryAt, at);
    }
    if (outcome.result === "delivered") this.counts.delivered++;
    else {
      if (rule) this.counts.failedAttempts++;
      if (outcome.result === "dead") this.counts.dead++;
    }
  }
}

export type DeliveryOutcome = { result: "delivered" } | { result: "retry"; retryInMs: number } | { result: "dead" };

/**
 * One attempt at one claimed event: POST the payload (signed when the rule
 * has a secret), then record the outcome in the outbox: delivered, retry
 * after exponential backoff with jitter, or dead after `maxAttempts`. The
 * worker pool above and the Workers build's Durable Object alarm both use it.
 */
export async function deliverEvent(
  e: OutboxEvent,
  rule: WebhookRule | undefined,
  outbox: Outbox,
  http: HttpPoster,
  hmac: HmacHex,
  clock: Clock,
  log: Logger,
  opts: Pick<WebhookWorkerOptions, "maxAttempts" | "retryBaseMs" | "retryMaxMs">,
): Promise<DeliveryOutcome> {
  if (!rule) {
    await outbox.failed(e.id, "rule no longer configured", null).catch(() => {});
    return { result: "dead" };
  }
  const body = JSON.stringify(payloadOf(e));
  const headers: Record<string, string> = {
    "content-type": "application/json",
    "user-agent": "headcount-webhooks",
    "x-headcount-event": e.id,
  };
  if (rule.secret) headers["x-headcount-signature"] = signatureHeader(hmac, rule.secret, body, Math.floor(clock.now() / 1000));
  let error: string;
  try {
    const status = await http.post(rule.url, body, headers);
    if (status >= 200 && status < 300) {
      await outbox.delivered(e.id);
      return { result: "delivered" };
    }
    error = `HTTP ${status}`;
  } catch (err) {
    error = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  }
  const dead = e.attempts >= opts.maxAttempts;
  const retryIn = dead ? null : backoffMs(e.attempts - 1, { baseMs: opts.retryBaseMs, maxMs: opts.retryMaxMs });
  if (dead) {
    log.warn("webhook: giving up", { event: e.id, key: e.key, attempts: e.attempts, error });
  } else {
    log.info("webhook: delivery failed; will retry", { event: e.id, attempts: e.attempts, retry_ms: retryIn, error });
  }
  await outbox.failed(e.id, error.slice(0, 500), retryIn).catch((err: unknown) => {
    // The lock expires and the event is claimed again: still at least once.
    log.warn("webhook: could not record failure", { err });
  });
  return retryIn === null ? { result: "dead" } : { result: "retry", retryInMs: retryIn };
}
