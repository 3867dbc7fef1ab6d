// The read side the widget and the dashboard see: totals and online now per
// key, history, site totals, webhook state. Node, Bun and Deno answer from
// the in-process Hub and the store (src/server/hub-insights.ts); Workers from
// its Durable Objects (src/runtime/cloudflare-stubs.ts).

import type { DailyPoint } from "../core/visitors.ts";

export interface KeyNumbers {
  key: string;
  total: number;
  online: number;
  /** Today's (UTC) distinct visitors and filtered bots, where the answer has them (a key's own numbers; the dashboard's list). */
  visitors?: number;
  bots?: number;
}

export interface MinutePoint {
  /** Start of the minute, epoch ms. */
  minute: number;
  visits: number;
}

export interface SiteTotal {
  /** Every key starting with this (empty: every key). */
  prefix: string;
  total: number;
  /** How many keys were summed. */
  keys: number;
  online: number;
  /**
   * How far behind these numbers may be, in ms: 0 where they are read from the
   * counters themselves, the index's report interval on Workers. A client that
   * has just been counted asks again after this long to see its own visit.
   */
  settleMs: number;
}

/** One key's numbers right now, today's visitors and bots included. */
export interface Counters {
  snapshot(key: string): Promise<Required<KeyNumbers>>;
}

export interface Insights {
  /** Up to `limit` keys: the most visited merged with the ones people are on right now, busiest first. */
  top(limit: number): Promise<KeyNumbers[]>;
  /** Visits per minute for `key` over the last `minutes`, oldest first; minutes without visits are absent. */
  history(key: string, minutes: number): Promise<MinutePoint[]>;
  /** The sum over every key that starts with `prefix`. */
  site(prefix: string): Promise<SiteTotal>;
  /** Daily numbers of `key` (null: the whole server) from `fromDay` on, oldest first; days without any are absent. */
  daily(key: string | null, fromDay: string): Promise<DailyPoint[]>;
}

export interface WebhookSummary {
  enabled: boolean;
  pending: number;
  delivered: number;
  dead: number;
  recentDead: Array<{ id: string; key: string; attempts: number; lastError: string | null }>;
}
