import type { Hub } from "../core/hub.ts";
import type { DayStore } from "../core/ports.ts";
import { SERVER_KEY, utcDay } from "../core/visitors.ts";
import type { Counters, Insights, KeyNumbers, MinutePoint } from "../routes/insights.ts";

// The widget's and dashboard's read side on Node, Bun and Deno: totals from
// the store, online now from the hub's rooms (which include other instances'
// sockets when the cluster bus runs).

/** What these reads need of a store; the SQLite and PostgreSQL stores both have it. */
export interface InsightsStore {
  top(limit: number): Promise<Array<{ key: string; total: number }>>;
  history(key: string, minutes: number): Promise<MinutePoint[]>;
  sumByPrefix(prefix: string): Promise<{ total: number; keys: number }>;
  readonly day: Pick<DayStore, "daily" | "today">;
}

export function hubCounters(hub: Hub): Counters {
  return { snapshot: (key) => hub.snapshot(key) };
}

/**
 * How long a site total is reused, and so how far behind it may be (the
 * answer's settleMs: a widget that has just been counted asks again after
 * it). A sum over every key of a prefix is a scan; with a million keys,
 * widgets polling it must not each pay for one.
 */
export const SITE_CACHE_MS = 5000;
/** Prefixes whose sums are remembered (least recently used out). */
const SITE_CACHE_MAX = 1000;

export function hubInsights(hub: Hub, store: InsightsStore, now: () => number = Date.now): Insights {
  // One sum in flight per prefix, shared by everyone who asks while it runs or within SITE_CACHE_MS.
  const sums = new Map<string, { at: number; value: Promise<{ total: number; keys: number }> }>();
  const sum = (prefix: string) => {
    const cached = sums.get(prefix);
    if (cached && now() - cached.at < SITE_CACHE_MS) {
      sums.delete(prefix);
      sums.set(prefix, cached);
      return cached.value;
    }
    const value = store.sumByPrefix(prefix);
    value.catch(() => sums.delete(prefix));
    sums.set(prefix, { at: now(), value });
    if (sums.size > SITE_CACHE_MAX) sums.delete(sums.keys().next().value!);
    return value;
  };
  return {
    async top(limit) {
      const rows = new Map<string, KeyNumbers>();
      for (const { key, total } of await store.top(limit)) rows.set(key, { key, total, online: 0 });
      // Keys people are on right now belong on the list even when their totals are small.
      const live = [...hub.rooms()].filter((r) => r.online > 0).sort((a, b) => b.online - a.online).slice(0, limit);
      const extra = await Promise.all(live.filter((r) => !rows.has(r.key)).map((r) => r.snapshot()));
      for (const s of extra) rows.set(s.key, { ...s });
      const today = await store.day.today([...rows.keys()], utcDay(now()));
      for (const row of rows.values()) {
        const t = today.get(row.key);
        row.visitors = t?.visitors ?? 0;
        row.bots = t?.bots ?? 0;
        const room = hub.room(row.key);
        if (!room) continue;
        row.online = room.online;
        // The room may have seen a commit the top query raced with; totals never go back.
        if (room.totalKnown) row.total = Math.max(row.total, room.total);
        row.visitors = Math.max(row.visitors, room.visitors);
      }
      return [...rows.values()]
        .sort((a, b) => b.online - a.online || b.total - a.total || (a.key < b.key ? -1 : 1))
        .slice(0, limit);
    },

    history: (key, minutes) => store.history(key, minutes),

    daily: (key, fromDay) => store.day.daily(key ?? SERVER_KEY, fromDay),

    async site(prefix) {
      const { total, keys } = await sum(prefix);
      let online = 0;
      for (const room of hub.rooms()) if (room.key.startsWith(prefix)) online += room.online;
      return { prefix, total, keys, online, settleMs: SITE_CACHE_MS };
    },
  };
}
