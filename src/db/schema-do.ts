import { index, integer, primaryKey, sqliteTable, text } from "drizzle-orm/sqlite-core";

// The Durable Object's own SQLite (Workers, DESIGN.md §3): counters, the
// per-minute history and settings as in schema.ts, in SQLite types. One
// Durable Object holds one key, so its tables hold that key only. Times are
// epoch ms.
// `npx drizzle-kit generate --config drizzle-do.config.ts` writes its migrations into drizzle-do/.

export const counters = sqliteTable("counters", {
  key: text("key").primaryKey(),
  total: integer("total").notNull(),
  updatedAt: integer("updated_at").notNull(),
});

/** Visits per key per minute (`minute` = start of the minute, epoch ms), written with the total. */
export const visitsPerMinute = sqliteTable(
  "visits_per_minute",
  {
    key: text("key").notNull(),
    minute: integer("minute").notNull(),
    visits: integer("visits").notNull(),
  },
  (t) => [primaryKey({ columns: [t.key, t.minute] })],
);

/** The resume-token secret when RESUME_SECRET is not set. */
export const settings = sqliteTable("settings", {
  name: text("name").primaryKey(),
  value: text("value").notNull(),
});

/**
 * Webhook events (issue 7), written in the same transaction as the increment
 * that crossed a milestone (`dedupe` makes each fire once) and delivered from
 * the object's alarm. Times are epoch ms; `id` is a UUID, as on PostgreSQL.
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
  (t) => [index("webhook_outbox_due").on(t.status, t.dueAt)],
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
