// What the embed and dashboard routes need from a deployment, beyond Counters.
// Node, Bun and Deno supply it from the in-process Hub and the SQL store
// (src/stats.ts); Workers from its Durable Objects and store.

export interface KeyNumbers {
  key: string;
  total: number;
  online: number;
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

export interface Stats {
  /** Up to `limit` keys: the most visited merged with the ones people are on right now, busiest first. */
  top(limit: number): Promise<KeyNumbers[]>;
  /** Visits per minute for `key` over the last `minutes`, oldest first; minutes without visits are absent. */
  history(key: string, minutes: number): Promise<MinutePoint[]>;
  /** The sum over every key that starts with `prefix`. */
  site(prefix: string): Promise<SiteTotal>;
}

export interface WebhookSummary {
  enabled: boolean;
  pending: number;
  delivered: number;
  dead: number;
  recentDead: Array<{ id: string; key: string; attempts: number; lastError: string | null }>;
}

export interface EmbedDeps {
  /** Webhook outbox state for the dashboard; absent where webhooks do not run. */
  webhooks?: () => Promise<WebhookSummary>;
  stats: Stats;
  /** CORS_ORIGINS: who may read the public JSON API and load the widget's module. */
  corsOrigins: "*" | readonly string[];
  /** ADMIN_TOKEN: when set, the dashboard's data needs `Authorization: Bearer <token>`. */
  adminToken: string | undefined;
}
