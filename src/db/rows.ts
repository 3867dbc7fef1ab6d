import type { OutboxEvent } from "../core/ports.ts";

export type Row = Record<string, unknown>;

/** postgres.js returns an array of rows; some drivers return `{ rows }`. */
export function rowsOf(result: unknown): Row[] {
  if (Array.isArray(result)) return result as Row[];
  const rows = (result as { rows?: unknown }).rows;
  return Array.isArray(rows) ? (rows as Row[]) : [];
}

/** An outbox row as returned by a claim (PostgreSQL or SQLite); `createdAt` already an ISO string. */
export function outboxEventOf(r: Row, createdAt: string): OutboxEvent {
  return {
    id: String(r.id),
    ruleId: String(r.rule_id),
    key: String(r.key),
    kind: r.kind === "online" ? "online" : "milestone",
    value: Number(r.value),
    total: Number(r.total),
    online: r.online === null || r.online === undefined ? null : Number(r.online),
    createdAt,
    attempts: Number(r.attempts),
  };
}
