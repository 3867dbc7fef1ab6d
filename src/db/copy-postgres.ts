import { sql } from "drizzle-orm";
import type { CopySource, CopyTarget } from "./copy.ts";
import { rowsOf } from "./rows.ts";
import { counters as c, daily as d, settings as s, visitsPerMinute as h } from "./schema.ts";
import type { SqlExecutor } from "./store.ts";

// PostgreSQL as either end of `npm run db:copy` (copy.ts). Times cross as
// epoch ms, exact to the millisecond either way.

export type PostgresCopyEndpoint = CopySource & CopyTarget;

const ms = (column: unknown) => sql`(extract(epoch from ${column}) * 1000)::bigint::text`;
const fromMs = (value: number) => sql`to_timestamp(${value}::float8 / 1000)`;

function endpoint(db: SqlExecutor, label: string, close: () => Promise<void>): PostgresCopyEndpoint {
  const rows = async (query: ReturnType<typeof sql>) => rowsOf(await db.execute(query));
  return {
    label,

    async counters(after, limit) {
      const found = await rows(sql`
        select ${c.key} as key, ${c.total}::text as total, ${ms(c.updatedAt)} as updated_at from ${c}
        ${after === null ? sql`` : sql`where ${c.key} > ${after}::text`} order by ${c.key} limit ${limit}::int`);
      return found.map((r) => ({ key: String(r.key), total: Number(r.total), updatedAt: Number(r.updated_at) }));
    },

    async history(after, limit) {
      const found = await rows(sql`
        select ${h.key} as key, ${ms(h.minute)} as minute, ${h.visits}::text as visits from ${h}
        ${after === null ? sql`` : sql`where (${h.key}, ${h.minute}) > (${after.key}::text, ${fromMs(after.minute)})`}
        order by ${h.key}, ${h.minute} limit ${limit}::int`);
      return found.map((r) => ({ key: String(r.key), minute: Number(r.minute), visits: Number(r.visits) }));
    },

    async daily(after, limit) {
      const found = await rows(sql`
        select ${d.key} as key, ${d.day} as day, ${d.visits}::text as visits, ${d.visitors}::text as visitors, ${d.bots}::text as bots
        from ${d} ${after === null ? sql`` : sql`where (${d.key}, ${d.day}) > (${after.key}::text, ${after.day}::text)`}
        order by ${d.key}, ${d.day} limit ${limit}::int`);
      return found.map((r) => ({ key: String(r.key), day: String(r.day), visits: Number(r.visits), visitors: Number(r.visitors), bots: Number(r.bots) }));
    },

    async settings() {
      const found = await rows(sql`select ${s.name} as name, ${s.value} as value from ${s} order by ${s.name}`);
      return found.map((r) => ({ name: String(r.name), value: String(r.value) }));
    },

    async countCounters() {
      return Number((await rows(sql`select count(*)::text as n from ${c}`))[0]?.n ?? 0);
    },

    // One JSON parameter per page rather than three per row: fewer bytes to parse, a short statement.
    async putCounters(list) {
      if (list.length === 0) return;
      await db.execute(sql`
        insert into ${c} (key, total, updated_at)
        select r.key, r.total, to_timestamp(r.ms / 1000)
        from jsonb_to_recordset(${JSON.stringify(list.map((r) => ({ key: r.key, total: r.total, ms: r.updatedAt })))}::jsonb)
          as r(key text, total bigint, ms float8)
        on conflict (key) do update set total = excluded.total, updated_at = excluded.updated_at`);
    },

    async putHistory(list) {
      if (list.length === 0) return;
      await db.execute(sql`
        insert into ${h} (key, minute, visits)
        select r.key, to_timestamp(r.ms / 1000), r.visits
        from jsonb_to_recordset(${JSON.stringify(list.map((r) => ({ key: r.key, ms: r.minute, visits: r.visits })))}::jsonb)
          as r(key text, ms float8, visits bigint)
        on conflict (key, minute) do update set visits = excluded.visits`);
    },

    async putDaily(list) {
      if (list.length === 0) return;
      await db.execute(sql`
        insert into ${d} (key, day, visits, visitors, bots)
        select r.key, r.day, r.visits, r.visitors, r.bots
        from jsonb_to_recordset(${JSON.stringify(list)}::jsonb) as r(key text, day text, visits bigint, visitors bigint, bots bigint)
        on conflict (key, day) do update set visits = excluded.visits, visitors = excluded.visitors, bots = excluded.bots`);
    },

    async putSettings(list) {
      if (list.length === 0) return;
      await db.execute(sql`
        insert into ${s} (name, value)
        select r.name, r.value from jsonb_to_recordset(${JSON.stringify(list)}::jsonb) as r(name text, value text)
        on conflict (name) do update set value = excluded.value`);
    },

    close,
  };
}

/** A PostgreSQL database; as a target it is migrated first (drizzle/, under the same advisory lock as the servers). */
export async function openPostgresCopyEndpoint(url: string, role: "source" | "target"): Promise<PostgresCopyEndpoint> {
  const { default: postgres } = await import("postgres");
  const { drizzle } = await import("drizzle-orm/postgres-js");
  const client = postgres(url, { max: 1, connect_timeout: 10, onnotice: () => {} });
  try {
    if (role === "target") {
      const { migrateBundled } = await import("./postgres-migrate.ts");
      await migrateBundled(client);
    }
    return endpoint(drizzle({ client }), url.replace(/\/\/[^@/]*@/, "//…@"), () => client.end({ timeout: 5 }));
  } catch (err) {
    await client.end({ timeout: 1 });
    throw err;
  }
}
