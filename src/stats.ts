import type { Config } from "./core/config.ts";
import type { Hub } from "./core/hub.ts";
import type { SqlStore } from "./db/store.ts";
import type { EmbedDeps, KeyNumbers, Stats } from "./routes/ports.ts";

// Stats for the embed and dashboard routes on Node, Bun and Deno: totals from
// the SQL store, online-now from the hub's rooms (which include other
// instances' sockets when the cluster bus runs).

type StatsStore = Pick<SqlStore, "top" | "history" | "sumByPrefix">;

export function hubStats(hub: Hub, store: StatsStore): Stats {
  return {
    async top(limit) {
      const rows = new Map<string, KeyNumbers>();
      for (const { key, total } of await store.top(limit)) rows.set(key, { key, total, online: 0 });
      // Keys people are on right now belong on the list even when their totals are small.
      const live = [...hub.rooms.values()].filter((r) => r.online > 0).sort((a, b) => b.online - a.online).slice(0, limit);
      const extra = await Promise.all(live.filter((r) => !rows.has(r.key)).map((r) => hub.snapshot(r.key)));
      for (const s of extra) rows.set(s.key, { ...s });
      for (const row of rows.values()) {
        const room = hub.rooms.get(row.key);
        if (!room) continue;
        row.online = room.online;
        // The room may have seen a commit the top query raced with; totals never go back.
        if (room.totalKnown) row.total = Math.max(row.total, room.total);
      }
      return [...rows.values()]
        .sort((a, b) => b.online - a.online || b.total - a.total || (a.key < b.key ? -1 : 1))
        .slice(0, limit);
    },

    history: (key, minutes) => store.history(key, minutes),

    async site(prefix) {
      const { total, keys } = await store.sumByPrefix(prefix);
      let online = 0;
      for (const room of hub.rooms.values()) if (room.key.startsWith(prefix)) online += room.online;
      return { prefix, total, keys, online, settleMs: 0 };
    },
  };
}

/** What createApp's `embed` needs, from what every Node/Bun/Deno entry already has. */
export function embedDeps(hub: Hub, store: StatsStore, config: Pick<Config, "corsOrigins" | "adminToken">): EmbedDeps {
  return { stats: hubStats(hub, store), corsOrigins: config.corsOrigins, adminToken: config.adminToken };
}
