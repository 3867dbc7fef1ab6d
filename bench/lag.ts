// Scenario "lag": does a server stay responsive while the public read
// endpoints work over many keys? A fresh embedded store is seeded with
// `keys` counters (directly through the store, in batches), the server starts
// on it, and for `durationMs` a poller asks /api/site for prefixes that match
// every key (each a scan the server may only share for its cache interval)
// and /api/top, while a pinger asks /healthz every 20 ms. The pinger's
// latencies are the event loop's responsiveness as a client sees it.
import { rmSync } from "node:fs";
import { openSqliteFile } from "../src/db/sqlite/file.ts";
import { freshDataDir, now, percentile, sleep, startServer, type Design } from "./lib.ts";

export interface LagOptions {
  keys: number;
  durationMs: number;
}

export interface LagRow {
  design: string;
  keys: number;
  seedMs: number;
  healthz: { n: number; p50: number; p99: number; max: number };
  site: { n: number; p50: number; max: number };
  top: { n: number; p50: number; max: number };
}

async function seed(dir: string, keys: number): Promise<void> {
  const store = await openSqliteFile(dir);
  try {
    for (let i = 0; i < keys; i += 500) {
      const counts = new Map<string, number>();
      for (let j = i; j < Math.min(keys, i + 500); j++) counts.set(`/lag/${String(j).padStart(7, "0")}`, 1 + (j % 13));
      await store.increment(counts);
    }
  } finally {
    await store.close();
  }
}

async function timed(url: string): Promise<number> {
  const t = now();
  const res = await fetch(url);
  await res.arrayBuffer();
  if (!res.ok) throw new Error(`${url}: ${res.status}`);
  return now() - t;
}

const stats = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return { n: s.length, p50: percentile(s, 50), p99: percentile(s, 99), max: s.at(-1) ?? 0 };
};

export async function lag(d: Design, env: Record<string, string>, opts: LagOptions, setLabel: (s: string) => void): Promise<LagRow> {
  const dir = freshDataDir();
  try {
    setLabel(`lag ${d.name}: seeding ${opts.keys} keys`);
    const t0 = now();
    await seed(dir, opts.keys);
    const seedMs = now() - t0;
    const server = await startServer(d, env, { dataDir: dir });
    try {
      setLabel(`lag ${d.name}: polling /api/site over ${opts.keys} keys`);
      const base = `http://127.0.0.1:${server.port}`;
      const until = now() + opts.durationMs;
      const healthz: number[] = [];
      const site: number[] = [];
      const top: number[] = [];
      const pinger = (async () => {
        while (now() < until) {
          healthz.push(await timed(`${base}/healthz`));
          await sleep(20);
        }
      })();
      const poller = (async () => {
        // Every one of these prefixes matches every key: each is a full scan when its cache entry is cold.
        const prefixes = ["", "/", "/l", "/la", "/lag", "/lag/"];
        for (let i = 0; now() < until; i++) {
          site.push(await timed(`${base}/api/site?prefix=${encodeURIComponent(prefixes[i % prefixes.length]!)}`));
          top.push(await timed(`${base}/api/top?limit=100`));
        }
      })();
      await Promise.all([pinger, poller]);
      const s = stats(site);
      const t = stats(top);
      return {
        design: d.name,
        keys: opts.keys,
        seedMs,
        healthz: stats(healthz),
        site: { n: s.n, p50: s.p50, max: s.max },
        top: { n: t.n, p50: t.p50, max: t.max },
      };
    } finally {
      await server.kill();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
