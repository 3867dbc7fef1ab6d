import { describe, expect, it } from "vitest";
import { postgresAvailable, TEST_DATABASE_URL, uniqueKey } from "./helpers/env.ts";
import { startLoad } from "./helpers/load.ts";
import { withSql } from "./helpers/postgres-control.ts";
import { freshDataDir, startServer } from "./helpers/server.ts";
import { sleep } from "./helpers/ws.ts";

// SIGTERM and SIGKILL under load (issue 5): a graceful stop loses no
// acknowledged visit and tells every client 1001; a crash loses nothing a
// client was shown.

const pgUp = await postgresAvailable();

async function tableTotal(key: string): Promise<number> {
  return withSql(async (sql) => {
    const rows = await sql<{ total: string }[]>`select total::text as total from counters where key = ${key}`;
    return Number(rows[0]?.total ?? 0);
  });
}

async function apiTotal(url: string, key: string): Promise<number> {
  return ((await (await fetch(`${url}/api/counters/${encodeURIComponent(key)}`)).json()) as { total: number }).total;
}

describe("shutdown under load", () => {
  for (const store of ["embedded", "postgres"] as const) {
    it.skipIf(store === "postgres" && !pgUp)(`SIGTERM on ${store}: exit 0 within the deadline, acked visits kept, every client got 1001`, async () => {
      const dataDir = store === "embedded" ? freshDataDir() : undefined;
      const env: Record<string, string> = { SHUTDOWN_TIMEOUT_MS: "8000" };
      if (store === "postgres") env.DATABASE_URL = TEST_DATABASE_URL;
      const server = await startServer({ env, dataDir });
      const key = uniqueKey("sigterm");
      // Arriving visitors that stay connected, plus a stream of newcomers.
      const holders = startLoad({ url: () => server.wsUrl(key), clients: 150, holdMs: 0, hold: true });
      const churn = startLoad({ url: () => server.wsUrl(key), clients: 20, holdMs: 30 });
      await sleep(1500);

      const t0 = Date.now();
      server.proc.kill("SIGTERM");
      const code = await server.exited;
      const took = Date.now() - t0;
      expect(code).toBe(0);
      expect(took).toBeLessThan(8000);

      await holders.settled(5000);
      await churn.stop(5000);
      const h = holders.result;
      const c = churn.result;
      expect(h.acked).toBe(150);
      // Every socket that had its hello was told 1001 (going away), and nothing else.
      expect([...h.closesAfterHello.keys()]).toEqual([1001]);
      expect(h.closesAfterHello.get(1001)).toBe(150);
      for (const code of c.closesAfterHello.keys()) expect([1000, 1001, 1005]).toContain(code);
      const acked = h.acked + c.acked;

      let stored: number;
      if (store === "postgres") stored = await tableTotal(key);
      else {
        const again = await startServer({ dataDir });
        stored = await apiTotal(again.url, key);
        await again.stop();
      }
      expect(stored).toBe(acked);
    });
  }

  for (const store of ["embedded", "postgres"] as const) {
    it.skipIf(store === "postgres" && !pgUp)(`SIGKILL on ${store}: the restarted server's total is at least the last any client saw`, async () => {
      const dataDir = store === "embedded" ? freshDataDir() : undefined;
      const env: Record<string, string> = store === "postgres" ? { DATABASE_URL: TEST_DATABASE_URL } : {};
      const server = await startServer({ env, dataDir });
      const key = uniqueKey("sigkill");
      const load = startLoad({ url: () => server.wsUrl(key), clients: 40, holdMs: 20 });
      await sleep(1500);
      server.proc.kill("SIGKILL");
      await server.exited;
      const seen = (await load.stop(5000)).maxTotal;
      expect(seen).toBeGreaterThan(20);

      const again = await startServer({ env, dataDir });
      try {
        expect(await apiTotal(again.url, key)).toBeGreaterThanOrEqual(seen);
      } finally {
        await again.stop();
      }
    });
  }
});
