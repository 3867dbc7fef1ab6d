import { sql } from "drizzle-orm";
import type { Outbox } from "../core/ports.ts";
import { outboxEventOf, rowsOf } from "./rows.ts";
import type { SqlExecutor } from "./store.ts";

// The webhook outbox in SQL. Claiming uses FOR UPDATE SKIP LOCKED so any
// number of instances share the work without handing one event to two of them.


export function sqlOutbox(db: SqlExecutor): Outbox {
  return {
    async claim(limit, lockMs, ruleIds) {
      if (ruleIds.length === 0 || limit <= 0) return [];
      const rules = sql.join(ruleIds.map((id) => sql`${id}`), sql`, `);
      const rows = rowsOf(
        await db.execute(sql`
          update webhook_outbox o
          set locked_until = now() + make_interval(secs => ${lockMs / 1000}::float8), attempts = o.attempts + 1
          where o.id in (
            select id from webhook_outbox
            where status = 'pending' and due_at <= now() and (locked_until is null or locked_until < now()) and rule_id in (${rules})
            order by due_at
            limit ${limit}::int
            for update skip locked
          )
          returning o.id::text as id, o.rule_id, o.key, o.kind, o.value::text as value, o.total::text as total, o.online,
            to_char(o.created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as created_at, o.attempts`),
      );
      return rows.map((r) => outboxEventOf(r, String(r.created_at)));
    },

    async delivered(id) {
      await db.execute(sql`
        update webhook_outbox set status = 'delivered', delivered_at = now(), locked_until = null, last_error = null
        where id = ${id}::uuid`);
    },

    async failed(id, error, retryInMs) {
      await db.execute(sql`
        update webhook_outbox set
          last_error = ${error},
          locked_until = null,
          status = ${retryInMs === null ? "dead" : "pending"},
          due_at = now() + make_interval(secs => ${(retryInMs ?? 0) / 1000}::float8)
        where id = ${id}::uuid`);
    },

    async fireOnline(ruleId, key, threshold, online, total) {
      const rows = rowsOf(
        await db.execute(sql`
          with st as (
            insert into webhook_state as s (rule_id, key, armed, generation) values (${ruleId}::text, ${key}::text, false, 1)
            on conflict (rule_id, key) do update set armed = false, generation = s.generation + 1 where s.armed
            returning s.generation
          )
          insert into webhook_outbox (dedupe, rule_id, key, kind, value, total, online)
          select 'o:' || md5(${ruleId}::text) || ':' || ${key}::text || ':' || st.generation, ${ruleId}::text, ${key}::text, 'online',
            ${threshold}::bigint, ${total}::bigint, ${online}::int
          from st
          on conflict (dedupe) do nothing
          returning id`),
      );
      return rows.length > 0;
    },

    async rearm(ruleId, key) {
      await db.execute(sql`update webhook_state set armed = true where rule_id = ${ruleId}::text and key = ${key}::text and not armed`);
    },

    async recentDead(limit) {
      const rows = rowsOf(
        await db.execute(sql`
          select id::text as id, key, attempts, last_error from webhook_outbox
          where status = 'dead' order by due_at desc limit ${limit}::int`),
      );
      return rows.map((r) => ({
        id: String(r.id),
        key: String(r.key),
        attempts: Number(r.attempts),
        lastError: r.last_error === null || r.last_error === undefined ? null : String(r.last_error),
      }));
    },

    async summary() {
      const rows = rowsOf(
        await db.execute(sql`
          select count(*) filter (where status = 'pending')::int as pending,
                 count(*) filter (where status = 'delivered')::int as delivered,
                 count(*) filter (where status = 'dead')::int as dead
          from webhook_outbox`),
      );
      const r = rows[0] ?? {};
      return { pending: Number(r.pending ?? 0), delivered: Number(r.delivered ?? 0), dead: Number(r.dead ?? 0) };
    },
  };
}
