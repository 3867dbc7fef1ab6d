// The Workers build's cross-key view (issue 6): one Durable Object that every
// CounterRoom tells its key's total and online-now (at most once a second per
// room, cloudflare-report.ts). It answers what no single key's object
// can: the busiest keys, a site total by prefix, and the admin list.
//
// On the objects' own SQLite the index's table is the only place that sees
// every key, so its totals are the rooms' last reports (at most a second
// behind). With Hyperdrive the totals come from PostgreSQL (store.ts top,
// sumByPrefix, list: exact), and only online-now comes from the reports.
//
// The table is a cache the rooms rebuild: a key appears after its first visit
// (or admin set) since the index existed. It is plain SQL on the object's
// storage rather than a Drizzle schema with migrations, for that reason.
import type * as CF from "@cloudflare/workers-types/index.ts";
import { parseConfig, type Config } from "../core/config.ts";
import { HeadcountError } from "../core/errors.ts";
import { KeyLimitError } from "../core/key-limit.ts";
import { createLogger } from "../core/logger.ts";
import type { Logger } from "../core/ports.ts";
import { openHyperdrive, type HyperdriveStore } from "../db/hyperdrive.ts";
import type { CounterRow } from "../routes/admin.ts";
import type { KeyNumbers, SiteTotal } from "../routes/insights.ts";
import { varsOf, type WorkerEnv } from "./cloudflare-env.ts";
import { REPORT_INTERVAL_MS, type Report } from "./cloudflare-report.ts";
import { prunePostgres } from "./cloudflare-retention.ts";

type Row = Record<string, CF.SqlStorageValue>;

/** Online-now (and, on the objects' SQLite, totals) are the rooms' reports: at most one interval plus a hop behind. */
const SETTLE_MS = REPORT_INTERVAL_MS + 500;
/** How stale the index's count of keys may get (reports of keys from before the index can add rows). */
const KEY_RECOUNT_MS = 60_000;


function order(a: KeyNumbers, b: KeyNumbers): number {
  return b.online - a.online || b.total - a.total || (a.key < b.key ? -1 : 1);
}

export class CounterIndex {
  readonly #sql: CF.SqlStorage;
  readonly #storage: CF.DurableObjectStorage;
  readonly #env: WorkerEnv;
  readonly #config: Config;
  readonly #log: Logger;
  #pg: HyperdriveStore | null = null;
  /** Rows in `keys`, as counted at `at` plus registrations since (MAX_KEYS). */
  #keyCount: { n: number; at: number } | null = null;

  constructor(ctx: CF.DurableObjectState, env: WorkerEnv) {
    this.#sql = ctx.storage.sql;
    this.#env = env;
    this.#config = parseConfig(varsOf(env));
    this.#log = createLogger(this.#config.logLevel, (line) => console.log(line), { runtime: "worker", object: "index" });
    this.#sql.exec(`create table if not exists keys (
      key text primary key, total integer not null, online integer not null, updated_at integer not null)`);
    this.#sql.exec("create index if not exists keys_total on keys (total desc)");
    this.#sql.exec("create index if not exists keys_online on keys (online) where online > 0");
    // With Hyperdrive, history is one PostgreSQL table: this one object prunes it (cloudflare-retention.ts).
    this.#storage = ctx.storage;
    if (env.HYPERDRIVE) void ctx.storage.getAlarm().then((at) => (at === null ? ctx.storage.setAlarm(Date.now() + 60_000) : undefined));
  }

  async alarm(): Promise<void> {
    const store = this.#store();
    if (store) await prunePostgres(this.#storage, store, this.#config.limits.historyRetentionDays);
  }

  /** PostgreSQL through Hyperdrive when bound (the rooms have migrated it). */
  #store(): HyperdriveStore | null {
    const hyperdrive = this.#env.HYPERDRIVE;
    if (!hyperdrive) return null;
    this.#pg ??= openHyperdrive(hyperdrive.connectionString, this.#config.pg.connectTimeoutS);
    return this.#pg;
  }

  async fetch(request: Request): Promise<Response> {
    const url = new URL(request.url);
    const limit = Math.max(1, Math.min(1000, Number(url.searchParams.get("limit") ?? 10) || 10));
    try {
      switch (url.pathname) {
        case "/report":
          this.#report((await request.json()) as Report);
          return Response.json({ ok: true });
        case "/register":
          await this.#register(url.searchParams.get("key") ?? "");
          return Response.json({ ok: true });
        case "/forget":
          this.#sql.exec("delete from keys where key = ?", url.searchParams.get("key") ?? "");
          this.#keyCount = null;
          return Response.json({ ok: true });
        case "/known":
          return Response.json({ known: await this.#known(url.searchParams.get("key") ?? "") });
        case "/top":
          return Response.json(await this.#top(limit));
        case "/site":
          return Response.json(await this.#site(url.searchParams.get("prefix") ?? ""));
        case "/list":
          return Response.json(await this.#list(limit, Math.max(0, Number(url.searchParams.get("offset") ?? 0) || 0)));
        case "/webhooks": {
          const store = this.#store();
          if (!store) return Response.json(null);
          const [counts, recentDead] = await Promise.all([store.outbox.summary(), store.outbox.recentDead(20)]);
          return Response.json({ ...counts, recentDead });
        }
      }
      return Response.json({ error: "not_found" }, { status: 404 });
    } catch (err) {
      if (err instanceof HeadcountError) return Response.json({ error: err.code, message: err.message }, { status: err.status });
      this.#log.warn("index request failed", { err, path: url.pathname });
      const message = err instanceof Error ? err.message : String(err);
      return Response.json({ error: "unavailable", message: `database unavailable: ${message}` }, { status: 503 });
    }
  }

  /**
   * Whether a key was ever counted: every room registers its key here before
   * its first visit is acknowledged (cloudflare-room.ts), so a key unknown here
   * was never visited and a read may answer 0 without waking its object. With
   * Hyperdrive, PostgreSQL is asked too (keys copied in by db:copy).
   */
  async #known(key: string): Promise<boolean> {
    if (this.#rows("select 1 from keys where key = ?", key).length > 0) return true;
    const store = this.#store();
    return store !== null && (await store.totals([key])).has(key);
  }

  /**
   * MAX_KEYS on Workers: a key's object registers its key here before its
   * first write, so this table sees every new key. Its rows are counted at
   * most once a minute (a report may add keys this count has not seen) and
   * counted up as keys register; at the cap a new key is refused.
   */
  async #register(key: string): Promise<void> {
    if (await this.#known(key)) return;
    const now = Date.now();
    if (this.#keyCount === null || now - this.#keyCount.at > KEY_RECOUNT_MS) {
      this.#keyCount = { n: Number(this.#rows("select count(*) as n from keys")[0]?.n ?? 0), at: now };
    }
    if (this.#keyCount.n >= this.#config.limits.maxKeys) throw new KeyLimitError(this.#config.limits.maxKeys);
    this.#report({ key, total: null, online: 0 });
    this.#keyCount.n++;
  }

  #report(r: Report): void {
    const now = Date.now();
    const total = r.total ?? 0;
    if (r.reset) {
      this.#sql.exec(
        `insert into keys (key, total, online, updated_at) values (?, ?, ?, ?)
         on conflict (key) do update set total = excluded.total, online = excluded.online, updated_at = excluded.updated_at`,
        r.key, total, r.online, now,
      );
    } else {
      // Totals never go back (reports may race a reset only through one room, which sends one at a time).
      this.#sql.exec(
        `insert into keys (key, total, online, updated_at) values (?, ?, ?, ?)
         on conflict (key) do update set total = max(total, excluded.total), online = excluded.online,
           updated_at = case when excluded.total > total then excluded.updated_at else updated_at end`,
        r.key, total, r.online, now,
      );
    }
  }

  #rows(query: string, ...params: CF.SqlStorageValue[]): Row[] {
    return this.#sql.exec<Row>(query, ...params).toArray();
  }

  /** Same shape and order as the Node/Bun/Deno hubStats: the most visited merged with the keys people are on now. */
  async #top(limit: number): Promise<KeyNumbers[]> {
    const live = this.#rows("select key, total, online from keys where online > 0 order by online desc limit ?", limit);
    const rows = new Map<string, KeyNumbers>();
    const store = this.#store();
    if (store) {
      for (const { key, total } of await store.top(limit)) rows.set(key, { key, total, online: 0 });
      const missing = live.map((r) => String(r.key)).filter((k) => !rows.has(k));
      const totals = missing.length ? await store.totals(missing) : new Map<string, number>();
      for (const key of missing) rows.set(key, { key, total: totals.get(key) ?? 0, online: 0 });
      const online = this.#online([...rows.keys()]);
      for (const row of rows.values()) row.online = online.get(row.key) ?? 0;
    } else {
      for (const r of this.#rows("select key, total, online from keys order by total desc, key limit ?", limit)) {
        rows.set(String(r.key), { key: String(r.key), total: Number(r.total), online: Number(r.online) });
      }
      for (const r of live) rows.set(String(r.key), { key: String(r.key), total: Number(r.total), online: Number(r.online) });
    }
    return [...rows.values()].sort(order).slice(0, limit);
  }

  #online(keys: string[]): Map<string, number> {
    const out = new Map<string, number>();
    for (const key of keys) {
      const r = this.#rows("select online from keys where key = ?", key)[0];
      if (r) out.set(key, Number(r.online));
    }
    return out;
  }

  async #site(prefix: string): Promise<SiteTotal> {
    // substr, not LIKE: a prefix may contain % and _.
    const r = this.#rows(
      "select coalesce(sum(total), 0) as total, count(*) as keys, coalesce(sum(online), 0) as online from keys where substr(key, 1, length(?)) = ?",
      prefix,
      prefix,
    )[0]!;
    const store = this.#store();
    if (store) {
      const { total, keys } = await store.sumByPrefix(prefix);
      return { prefix, total, keys, online: Number(r.online), settleMs: SETTLE_MS };
    }
    return { prefix, total: Number(r.total), keys: Number(r.keys), online: Number(r.online), settleMs: SETTLE_MS };
  }

  async #list(limit: number, offset: number): Promise<CounterRow[]> {
    const store = this.#store();
    if (store) return store.list(limit, offset);
    return this.#rows("select key, total, updated_at from keys order by key limit ? offset ?", limit, offset).map((r) => ({
      key: String(r.key),
      total: Number(r.total),
      updatedAt: new Date(Number(r.updated_at)).toISOString(),
    }));
  }
}
