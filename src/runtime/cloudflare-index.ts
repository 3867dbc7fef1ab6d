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
import { createLogger } from "../core/logger.ts";
import type { Logger } from "../core/ports.ts";
import { openHyperdrive, type HyperdriveStore } from "../db/hyperdrive.ts";
import type { CounterRow } from "../routes/admin.ts";
import type { KeyNumbers, SiteTotal } from "../routes/insights.ts";
import { varsOf, type WorkerEnv } from "./cloudflare-env.ts";
import { IndexKeys } from "./cloudflare-index-keys.ts";
import { REPORT_INTERVAL_MS, type Report, type ServerDay } from "./cloudflare-report.ts";
import { prunePostgres } from "./cloudflare-retention.ts";
import { randomSecret } from "./signer.ts";
import { daysBefore, SERVER_KEY, utcDay, type DailyPoint } from "../core/visitors.ts";

type Row = Record<string, CF.SqlStorageValue>;

/** Online-now (and, on the objects' SQLite, totals) are the rooms' reports: at most one interval plus a hop behind. */
const SETTLE_MS = REPORT_INTERVAL_MS + 500;


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
  readonly #keys: IndexKeys;

  constructor(ctx: CF.DurableObjectState, env: WorkerEnv) {
    this.#sql = ctx.storage.sql;
    this.#storage = ctx.storage;
    this.#env = env;
    this.#config = parseConfig(varsOf(env));
    this.#log = createLogger(this.#config.logLevel, (line) => console.log(line), { runtime: "worker", object: "index" });
    this.#sql.exec(`create table if not exists keys (
      key text primary key, total integer not null, online integer not null, updated_at integer not null)`);
    this.#sql.exec("create index if not exists keys_total on keys (total desc)");
    this.#sql.exec("create index if not exists keys_online on keys (online) where online > 0");
    // The visitor salt of the day for every key's object (core/visitors.ts); older days' are deleted as a new one is made.
    this.#sql.exec("create table if not exists visitor_salts (day text primary key, salt text not null)");
    // The server's days on the objects' own SQLite, from the rooms' reports: visits and bots summed,
    // visitors distinct over every key through the server-wide hashes the reports carry.
    this.#sql.exec(`create table if not exists server_daily (
      day text primary key, visits integer not null, visitors integer not null, bots integer not null)`);
    // Each key's visitors and bots today, as its room last reported them (the dashboard's list).
    this.#sql.exec("create table if not exists key_days (key text primary key, day text not null, visitors integer not null, bots integer not null)");
    this.#sql.exec("create table if not exists server_hashes (day text not null, hash text not null, primary key (day, hash)) without rowid");
    this.#keys = new IndexKeys(this.#sql, this.#config.limits.maxKeys);
    // With Hyperdrive, history is one PostgreSQL table: this one object prunes it, hourly (cloudflare-retention.ts).
    if (env.HYPERDRIVE) void ctx.storage.getAlarm().then((at) => (at === null ? ctx.storage.setAlarm(Date.now() + 60_000) : undefined));
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
        case "/register": {
          const key = url.searchParams.get("key") ?? "";
          await this.#keys.register(key, (k) => this.#known(k), () => this.#report({ key, total: null, online: 0 }));
          return Response.json({ ok: true });
        }
        case "/forget":
          this.#keys.forget(url.searchParams.get("key") ?? "");
          return Response.json({ ok: true });
        case "/salt":
          return Response.json({ salt: await this.#salt(url.searchParams.get("day") ?? "") });
        case "/daily":
          return Response.json(await this.#daily(url.searchParams.get("from") ?? ""));
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
   * The salt of `day`: PostgreSQL's when bound (shared with every server on it),
   * else this object's own. Only the current day asks, so making one deletes the days before.
   */
  async #salt(day: string): Promise<string> {
    if (!/^\d{4}-\d{2}-\d{2}$/.test(day)) throw new HeadcountError(400, "bad_request", "day must be YYYY-MM-DD");
    const store = this.#store();
    if (store) return store.day.salt(day, randomSecret());
    const row = this.#rows("select salt from visitor_salts where day = ?", day)[0];
    if (row) return String(row.salt);
    const salt = randomSecret();
    this.#sql.exec("insert into visitor_salts (day, salt) values (?, ?)", day, salt);
    this.#rollUp(day);
    // Nobody may ask for tomorrow's salt: the alarm rolls this day up a minute after it ends all the same.
    await this.#storage.setAlarm(Date.parse(`${day}T00:00:00Z`) + 86_400_000 + 60_000);
    return salt;
  }

  /** The roll-up of the index's own: the days before `today` lose their salts and server-wide hashes (their counts stay). */
  #rollUp(today: string): void {
    this.#sql.exec("delete from visitor_salts where day < ?", today);
    this.#sql.exec("delete from server_hashes where day < ?", today);
  }

  async alarm(): Promise<void> {
    this.#rollUp(utcDay(Date.now()));
    const store = this.#store();
    if (store) await prunePostgres(this.#storage, store, this.#config.limits.historyRetentionDays);
  }

  /** The server's days: PostgreSQL's when bound, else what the rooms reported (#reportDay). */
  async #daily(from: string): Promise<DailyPoint[]> {
    const store = this.#store();
    if (store) return store.day.daily(SERVER_KEY, from);
    return this.#rows("select day, visits, visitors, bots from server_daily where day >= ? order by day", from).map((r) => ({
      day: String(r.day),
      visits: Number(r.visits),
      visitors: Number(r.visitors),
      bots: Number(r.bots),
    }));
  }

  /** A room's share of the server's days: visits and bots added, hashes counted once (the day's distinct visitors). */
  #reportDays(days: readonly ServerDay[]): void {
    for (const d of days) {
      let fresh = 0;
      for (const hash of d.hashes) {
        fresh += this.#rows("insert into server_hashes (day, hash) values (?, ?) on conflict do nothing returning 1 as fresh", d.day, hash).length;
      }
      this.#sql.exec(
        `insert into server_daily (day, visits, visitors, bots) values (?, ?, ?, ?)
         on conflict (day) do update set visits = visits + excluded.visits, visitors = visitors + excluded.visitors, bots = bots + excluded.bots`,
        d.day, d.visits, fresh, d.bots,
      );
    }
    this.#sql.exec("delete from server_daily where day < ?", daysBefore(utcDay(Date.now()), this.#config.limits.historyRetentionDays));
  }

  #report(r: Report): void {
    if (r.days && !this.#store()) this.#reportDays(r.days);
    if (r.today) {
      // A later day replaces an earlier one; within a day the numbers only grow (a woken room may not know them yet).
      this.#sql.exec(
        `insert into key_days (key, day, visitors, bots) values (?, ?, ?, ?)
         on conflict (key) do update set
           visitors = case when excluded.day > day then excluded.visitors else max(visitors, excluded.visitors) end,
           bots = case when excluded.day > day then excluded.bots else max(bots, excluded.bots) end,
           day = max(day, excluded.day)`,
        r.key, r.today.day, r.today.visitors, r.today.bots,
      );
    }
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
    const top = [...rows.values()].sort(order).slice(0, limit);
    const day = utcDay(Date.now());
    for (const row of top) {
      const t = this.#rows("select visitors, bots from key_days where key = ? and day = ?", row.key, day)[0];
      row.visitors = Number(t?.visitors ?? 0);
      row.bots = Number(t?.bots ?? 0);
    }
    return top;
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
