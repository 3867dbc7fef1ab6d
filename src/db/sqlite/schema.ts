import { sql } from "drizzle-orm/sql/sql";
import { index } from "drizzle-orm/sqlite-core/indexes";
import { integer } from "drizzle-orm/sqlite-core/columns/integer";
import { primaryKey } from "drizzle-orm/sqlite-core/primary-keys";
import { sqliteTable } from "drizzle-orm/sqlite-core/table";
import { text } from "drizzle-orm/sqlite-core/columns/text";

// The one SQLite schema (DESIGN.md §3): a file in DATA_DIR (file.ts) and each
// Durable Object's own storage (durable.ts). Same tables as schema.ts, in
// SQLite types; times are epoch ms. A Durable Object holds one key, so there
// its tables hold that key only. `npm run db:generate` writes drizzle-sqlite/.
//
// Imported by deep path, not "drizzle-orm/sqlite-core": that index loads ~100
// modules (query builders, dialect) the store never uses, and on Node each
// module loaded costs ~2 MB of RSS (see src/db/sqlite/render.ts).

export const counters = sqliteTable(
  "counters",
  {
    key: text("key").primaryKey(),
    total: integer("total").notNull(),
    updatedAt: integer("updated_at").notNull(),
  },
  // /api/top reads the highest totals through this, not a sort of every key.
  (t) => [index("counters_total").on(sql`${t.total} desc`, t.key)],
);

/** Visits per key per minute (`minute` = start of the minute, epoch ms), written with the total. */
export const visitsPerMinute = sqliteTable(
  "visits_per_minute",
  {
    key: text("key").notNull(),
    minute: integer("minute").notNull(),
    visits: integer("visits").notNull(),
  },
  // By minute: HISTORY_RETENTION_DAYS prunes the oldest rows in bounded batches (maintenance.ts).
  (t) => [primaryKey({ columns: [t.key, t.minute] }), index("visits_per_minute_minute").on(t.minute)],
);

/** Instance-wide settings (the resume-token secret when RESUME_SECRET is not set). */
export const settings = sqliteTable("settings", {
  name: text("name").primaryKey(),
  value: text("value").notNull(),
});

/**
 * Webhook events, written in the same transaction as the increment that
 * crossed a milestone (`dedupe` makes each fire once). `id` is a UUID, as on
 * PostgreSQL.
 */
export const webhookOutbox = sqliteTable(
  "webhook_outbox",
  {
    id: text("id").primaryKey(),
    dedupe: text("dedupe").notNull().unique(),
    ruleId: text("rule_id").notNull(),
    key: text("key").notNull(),
    kind: text("kind").notNull(),
    value: integer("value").notNull(),
    total: integer("total").notNull(),
    online: integer("online"),
    status: text("status").notNull().default("pending"),
    attempts: integer("attempts").notNull().default(0),
    createdAt: integer("created_at").notNull(),
    dueAt: integer("due_at").notNull(),
    lockedUntil: integer("locked_until"),
    deliveredAt: integer("delivered_at"),
    lastError: text("last_error"),
  },
  // Claims look for one rule's pending events (the same indexes as PostgreSQL's, src/db/schema.ts).
  (t) => [
    index("webhook_outbox_claim").on(t.ruleId, t.dueAt).where(sql`${t.status} = 'pending'`),
    index("webhook_outbox_settled").on(t.status, t.dueAt).where(sql`${t.status} <> 'pending'`),
  ],
);

/** Online-threshold rules: armed until they fire, re-armed below the hysteresis line. */
export const webhookState = sqliteTable(
  "webhook_state",
  {
    ruleId: text("rule_id").notNull(),
    key: text("key").notNull(),
    armed: integer("armed").notNull(),
    generation: integer("generation").notNull(),
  },
  (t) => [primaryKey({ columns: [t.ruleId, t.key] })],
);

// Visitors (issue 13, core/visitors.ts): the same tables as PostgreSQL's.
// `day` is the UTC day as YYYY-MM-DD; key "" holds the server's numbers.

/** Per key and per UTC day: visits, distinct visitors, filtered bots. */
export const daily = sqliteTable(
  "daily",
  {
    key: text("key").notNull(),
    day: text("day").notNull(),
    visits: integer("visits").notNull(),
    visitors: integer("visitors").notNull(),
    bots: integer("bots").notNull(),
  },
  (t) => [primaryKey({ columns: [t.key, t.day] })],
);

/** The current day's visitor hashes (64 bits, hex); deleted with secure_delete by the roll-up. */
export const visitorHashes = sqliteTable(
  "visitor_hashes",
  {
    key: text("key").notNull(),
    day: text("day").notNull(),
    hash: text("hash").notNull(),
  },
  (t) => [primaryKey({ columns: [t.key, t.day, t.hash] })],
);

/** Each day's salt, deleted by the roll-up. */
export const visitorSalts = sqliteTable("visitor_salts", {
  day: text("day").primaryKey(),
  salt: text("salt").notNull(),
});
