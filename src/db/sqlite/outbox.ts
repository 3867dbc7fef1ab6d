import { sql } from "drizzle-orm/sql/sql";
import type { Outbox } from "../../core/ports.ts";
import { outboxEventOf } from "../rows.ts";
import type { SqliteExecutor } from "./executor.ts";
import { bare } from "./names.ts";
import { webhookOutbox as o, webhookState as s } from "./schema.ts";

// The webhook outbox on SQLite. One process owns the database (the file's
// lock, or the Durable Object), so a claim needs no SKIP LOCKED: its single
// UPDATE … RETURNING is atomic. Times are epoch ms.

const iso = (ms: unknown) => new Date(Number(ms)).toISOString();

export interface SqliteOutboxOptions {
  /** Called inside the transaction that wrote an online event, before it is made durable. */
  onFired?: () => void;
}

export function sqliteOutbox(db: SqliteExecutor, opts: SqliteOutboxOptions = {}): Outbox {
  return {
    async claim(limit, lockMs, ruleIds) {
      if (ruleIds.length === 0 || limit <= 0) return [];
      const now = Date.now();
      const rules = sql.join(ruleIds.map((id) => sql`${id}`), sql`, `);
      const rows = db.all(sql`
        update ${o} set ${bare(o.lockedUntil)} = ${now + lockMs}, ${bare(o.attempts)} = ${o.attempts} + 1
        where ${o.id} in (
          select ${o.id} from ${o}
          where ${o.status} = 'pending' and ${o.dueAt} <= ${now}
            and (${o.lockedUntil} is null or ${o.lockedUntil} < ${now}) and ${o.ruleId} in (${rules})
          order by ${o.dueAt} limit ${limit}
        )
        returning ${o.id}, ${o.ruleId}, ${o.key}, ${o.kind}, ${o.value}, ${o.total}, ${o.online}, ${o.createdAt}, ${o.attempts}`);
      await db.durable();
      return rows.map((r) => outboxEventOf(r, iso(r.created_at)));
    },

    async delivered(id) {
      db.run(sql`
        update ${o} set ${bare(o.status)} = 'delivered', ${bare(o.deliveredAt)} = ${Date.now()},
          ${bare(o.lockedUntil)} = null, ${bare(o.lastError)} = null
        where ${o.id} = ${id}`);
      await db.durable();
    },

    async failed(id, error, retryInMs) {
      db.run(sql`
        update ${o} set ${bare(o.lastError)} = ${error}, ${bare(o.lockedUntil)} = null,
          ${bare(o.status)} = ${retryInMs === null ? "dead" : "pending"}, ${bare(o.dueAt)} = ${Date.now() + (retryInMs ?? 0)}
        where ${o.id} = ${id}`);
      await db.durable();
    },

    async fireOnline(ruleId, key, threshold, online, total) {
      const now = Date.now();
      const fired = db.transaction(() => {
        const state = db.all(sql`
          insert into ${s} (${bare(s.ruleId)}, ${bare(s.key)}, ${bare(s.armed)}, ${bare(s.generation)}) values (${ruleId}, ${key}, 0, 1)
          on conflict (${bare(s.ruleId)}, ${bare(s.key)}) do update set ${bare(s.armed)} = 0, ${bare(s.generation)} = ${s.generation} + 1
          where ${s.armed} = 1
          returning ${s.generation}`)[0];
        if (state === undefined) return false;
        const rows = db.all(sql`
          insert into ${o} (${bare(o.id)}, ${bare(o.dedupe)}, ${bare(o.ruleId)}, ${bare(o.key)}, ${bare(o.kind)}, ${bare(o.value)},
            ${bare(o.total)}, ${bare(o.online)}, ${bare(o.createdAt)}, ${bare(o.dueAt)})
          values (${crypto.randomUUID()}, ${`o:${ruleId}:${key}:${Number(state.generation)}`}, ${ruleId}, ${key}, 'online',
            ${threshold}, ${total}, ${online}, ${now}, ${now})
          on conflict (${bare(o.dedupe)}) do nothing
          returning ${o.id}`);
        if (rows.length > 0) opts.onFired?.();
        return rows.length > 0;
      });
      await db.durable();
      return fired;
    },

    async rearm(ruleId, key) {
      db.run(sql`update ${s} set ${bare(s.armed)} = 1 where ${s.ruleId} = ${ruleId} and ${s.key} = ${key} and ${s.armed} = 0`);
      await db.durable();
    },

    async summary() {
      const r = db.all(sql`
        select coalesce(sum(${o.status} = 'pending'), 0) as pending, coalesce(sum(${o.status} = 'delivered'), 0) as delivered,
          coalesce(sum(${o.status} = 'dead'), 0) as dead
        from ${o}`)[0];
      return { pending: Number(r?.pending ?? 0), delivered: Number(r?.delivered ?? 0), dead: Number(r?.dead ?? 0) };
    },

    async recentDead(limit) {
      const rows = db.all(sql`
        select ${o.id}, ${o.key}, ${o.attempts}, ${o.lastError} from ${o}
        where ${o.status} = 'dead' order by ${o.dueAt} desc limit ${limit}`);
      return rows.map((r) => ({
        id: String(r.id),
        key: String(r.key),
        attempts: Number(r.attempts),
        lastError: r.last_error === null || r.last_error === undefined ? null : String(r.last_error),
      }));
    },
  };
}

/** When the next pending event can be claimed (epoch ms), or null when none is pending. */
export function nextDue(db: SqliteExecutor): number | null {
  // A claimed event is not due again before its lock expires.
  const r = db.all(sql`
    select min(max(${o.dueAt}, coalesce(${o.lockedUntil}, 0))) as due from ${o} where ${o.status} = 'pending'`)[0];
  return r?.due === null || r?.due === undefined ? null : Number(r.due);
}
