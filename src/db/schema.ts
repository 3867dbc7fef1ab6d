import { sql } from "drizzle-orm";
import { bigint, boolean, index, integer, pgTable, primaryKey, text, timestamp, uuid } from "drizzle-orm/pg-core";

// DESIGN.md §3. Totals are bigint in SQL and read as JS numbers: exact up to
// 2^53 visits, which no counter will reach.

export const counters = pgTable(
  "counters",
  {
    key: text("key").primaryKey(),
    total: bigint("total", { mode: "number" }).notNull(),
    updatedAt: timestamp("updated_at", { withTimezone: true }).notNull().defaultNow(),
  },
  // /api/top reads the highest totals through this, not a sort of every key.
  (t) => [index("counters_total").on(t.total.desc(), t.key)],
);

/** Visits per key per minute, upserted in the same statement as the total. */
export const visitsPerMinute = pgTable(
  "visits_per_minute",
  {
    key: text("key").notNull(),
    minute: timestamp("minute", { withTimezone: true }).notNull(),
    visits: bigint("visits", { mode: "number" }).notNull(),
  },
  // By minute: HISTORY_RETENTION_DAYS prunes the oldest rows in bounded batches (db/maintenance.ts).
  (t) => [primaryKey({ columns: [t.key, t.minute] }), index("visits_per_minute_minute").on(t.minute)],
);

/** Instance-wide settings shared by every process on the database (the resume-token secret). */
export const settings = pgTable("settings", {
  name: text("name").primaryKey(),
  value: text("value").notNull(),
});

/** Webhook rules from WEBHOOK_RULES, synced at start-up so the increment statement can join them. */
export const webhookRules = pgTable("webhook_rules", {
  /** The rule's canonical JSON (without its secret): stable across restarts and instances. */
  id: text("id").primaryKey(),
  matchKey: text("match_key"),
  matchPrefix: text("match_prefix"),
  every: bigint("every", { mode: "number" }),
  milestones: bigint("milestones", { mode: "number" }).array(),
});

/**
 * Events waiting for delivery, written in the same statement as the increment
 * (milestones) or the presence change (online thresholds) that caused them.
 * `dedupe` makes an event fire once however many instances see it.
 */
export const webhookOutbox = pgTable(
  "webhook_outbox",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    dedupe: text("dedupe").notNull().unique(),
    ruleId: text("rule_id").notNull(),
    key: text("key").notNull(),
    kind: text("kind").notNull(),
    value: bigint("value", { mode: "number" }).notNull(),
    total: bigint("total", { mode: "number" }).notNull(),
    online: integer("online"),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
    dueAt: timestamp("due_at", { withTimezone: true }).notNull().defaultNow(),
    lockedUntil: timestamp("locked_until", { withTimezone: true }),
    attempts: integer("attempts").notNull().default(0),
    status: text("status").notNull().default("pending"),
    lastError: text("last_error"),
    deliveredAt: timestamp("delivered_at", { withTimezone: true }),
  },
  (t) => [
    // Pending events are claimed by rule (db/outbox.ts): events of rules no running instance has may
    // stay pending for good, and no claim may scan them. The other index covers only settled events
    // (the dashboard's recent dead), so the planner cannot walk pending ones by time and filter by rule.
    index("webhook_outbox_claim").on(t.ruleId, t.dueAt).where(sql`${t.status} = 'pending'`),
    index("webhook_outbox_settled").on(t.status, t.dueAt).where(sql`${t.status} <> 'pending'`),
  ],
);

/** Online-threshold rules: armed until they fire, re-armed below the hysteresis line. */
export const webhookState = pgTable(
  "webhook_state",
  {
    ruleId: text("rule_id").notNull(),
    key: text("key").notNull(),
    armed: boolean("armed").notNull(),
    generation: integer("generation").notNull(),
  },
  (t) => [primaryKey({ columns: [t.ruleId, t.key] })],
);

// Visitors (issue 13, core/visitors.ts). `day` is the UTC day as YYYY-MM-DD;
// key "" holds the server's own numbers (no key may be empty).

/** Per key and per UTC day: visits, distinct visitors, filtered bots. Kept for HISTORY_RETENTION_DAYS. */
export const daily = pgTable(
  "daily",
  {
    key: text("key").notNull(),
    day: text("day").notNull(),
    visits: bigint("visits", { mode: "number" }).notNull(),
    visitors: bigint("visitors", { mode: "number" }).notNull(),
    bots: bigint("bots", { mode: "number" }).notNull(),
  },
  (t) => [primaryKey({ columns: [t.key, t.day] })],
);

/**
 * The visitor hashes of the current day (64 bits, hex), one row per distinct
 * visitor per key; deleted by the roll-up once the day is over. UNLOGGED
 * (hand-edited into the migration, drizzle-kit cannot say it): not in the
 * WAL, not replicated, emptied by a crash, which then recounts that day's
 * visitors once rather than keeping them anywhere else.
 */
export const visitorHashes = pgTable(
  "visitor_hashes",
  {
    key: text("key").notNull(),
    day: text("day").notNull(),
    hash: text("hash").notNull(),
  },
  (t) => [primaryKey({ columns: [t.key, t.day, t.hash] })],
);

/** The salt of each day that has one (one row shared by every instance); UNLOGGED too, deleted at the roll-up. */
export const visitorSalts = pgTable("visitor_salts", {
  day: text("day").primaryKey(),
  salt: text("salt").notNull(),
});
