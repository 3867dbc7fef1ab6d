import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { postgresAvailable, TEST_DATABASE_URL, uniqueKey } from "./helpers/env.ts";
import postgres from "postgres";
import { startLoad } from "./helpers/load.ts";
import { restartPostgres, startPostgres, stopPostgres, withSql } from "./helpers/postgres-control.ts";
import { startServer, type RunningServer } from "./helpers/server.ts";
import { sleep, TestSocket } from "./helpers/ws.ts";

// Suites that stop or restart the shared PostgreSQL server. They run alone,
// after everything else (vitest.config.ts, project "disruptive").

const pgUp = await postgresAvailable();

describe.skipIf(!pgUp)("PostgreSQL restarts", () => {
  const servers: RunningServer[] = [];
  const env = { DATABASE_URL: TEST_DATABASE_URL, PRESENCE_TTL_MS: "2000" };

  beforeAll(async () => {
    servers.push(...(await Promise.all([1, 2].map(() => startServer({ env })))));
  });
  afterAll(async () => {
    await startPostgres(); // whatever happened, leave the database up
    await Promise.all(servers.map((s) => s.stop()));
  });

  it("after a restart, fan-out between instances resumes and totals are right", async () => {
    const [a, b] = servers as [RunningServer, RunningServer];
    const key = uniqueKey("pg-restart");
    const watcher = await TestSocket.join(b.wsUrl(key));
    await (await TestSocket.join(a.wsUrl(key))).sock.close();
    await watcher.sock.until((n) => n.total === 2);

    await restartPostgres();

    const after = [];
    for (let i = 0; i < 3; i++) after.push(await TestSocket.join(a.wsUrl(key), 30_000));
    await watcher.sock.until((n) => n.total === 5, 20_000);
    const api = await (await fetch(`${b.url}/api/counters/${encodeURIComponent(key)}`)).json();
    expect(api).toMatchObject({ total: 5 });
    for (const v of after) await v.sock.close();
    await watcher.sock.close();
  });
});

describe.skipIf(!pgUp)("PostgreSQL stopped under load", () => {
  afterAll(async () => {
    await startPostgres();
  });

  it("keeps sockets, reports 503 on /readyz, and loses no acknowledged visit", async () => {
    const server = await startServer({ env: { DATABASE_URL: TEST_DATABASE_URL, COMMIT_TIMEOUT_MS: "60000" } });
    const key = uniqueKey("pg-stop");
    try {
      const watcher = await TestSocket.join(server.wsUrl(key));
      const load = startLoad({ url: () => server.wsUrl(key), clients: 20, holdMs: 20 });
      await sleep(1000);
      stopPostgres();
      await expect.poll(async () => (await fetch(`${server.url}/readyz`)).status, { timeout: 10_000 }).toBe(503);
      expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
      await sleep(2000); // visitors keep arriving; their visits wait
      await startPostgres();
      await expect.poll(async () => (await fetch(`${server.url}/readyz`)).status, { timeout: 20_000 }).toBe(200);
      await sleep(1000);
      const result = await load.stop(20_000);

      // The watcher was never dropped, and no visit a client saw acknowledged is missing.
      expect(watcher.sock.ws.readyState).toBe(WebSocket.OPEN);
      expect(result.closesBeforeHello.get(1013) ?? 0).toBe(0);
      const stored = await withSql(async (sql) => {
        const rows = await sql<{ total: string }[]>`select total::text as total from counters where key = ${key}`;
        return Number(rows[0]?.total ?? 0);
      });
      expect(stored).toBe(result.acked + 1);
      await watcher.sock.until((n) => n.total === stored, 10_000);
      await watcher.sock.close();
    } finally {
      await startPostgres();
      await server.stop();
    }
  });

  it("refuses visits it cannot commit within COMMIT_TIMEOUT_MS with close 1013, and stores none of them", async () => {
    const server = await startServer({ env: { DATABASE_URL: TEST_DATABASE_URL, COMMIT_TIMEOUT_MS: "1000" } });
    const key = uniqueKey("pg-timeout");
    try {
      await (await TestSocket.join(server.wsUrl(key))).sock.close();
      stopPostgres();
      const waiting = await Promise.all([1, 2, 3].map(() => TestSocket.open(server.wsUrl(key))));
      const closes = await Promise.all(waiting.map((w) => w.closed));
      for (const c of closes) {
        expect(c.code).toBe(1013);
        expect(c.reason).toMatch(/database unavailable/);
      }
      expect(waiting.every((w) => w.messages.length === 0 || w.messages.every((m) => m.type !== "hello"))).toBe(true);
      await startPostgres();
      await expect.poll(async () => (await fetch(`${server.url}/readyz`)).status, { timeout: 20_000 }).toBe(200);
      const after = await TestSocket.join(server.wsUrl(key), 20_000);
      expect(after.hello.total).toBe(2);
      await after.sock.close();
    } finally {
      await startPostgres();
      await server.stop();
    }
  });

  it("a saturated pool answers 503 quickly instead of queueing (PG_ACQUIRE_TIMEOUT_MS)", async () => {
    const server = await startServer({
      env: { DATABASE_URL: TEST_DATABASE_URL, PG_POOL_MAX: "1", PG_ACQUIRE_TIMEOUT_MS: "200" },
    });
    const key = uniqueKey("pool");
    const locker = postgres(TEST_DATABASE_URL, { max: 1, onnotice: () => {} });
    try {
      // Hold a lock the server's read needs, so its one connection stays busy.
      const reserved = await locker.reserve();
      await reserved`begin`;
      await reserved`lock table counters in access exclusive mode`;
      const blocked = fetch(`${server.url}/api/counters/${encodeURIComponent(key)}`);
      await sleep(300);
      const t0 = Date.now();
      const res = await fetch(`${server.url}/api/counters/${encodeURIComponent(key)}x`);
      expect(res.status).toBe(503);
      expect(await res.json()).toMatchObject({ error: "database_busy" });
      expect(Date.now() - t0).toBeLessThan(2000);
      await reserved`rollback`;
      reserved.release();
      const late = await blocked;
      expect(late.status, await late.clone().text()).toBe(200);
    } finally {
      await locker.end({ timeout: 1 });
      await server.stop();
    }
  });
});

describe.skipIf(!pgUp)("a second signal", () => {
  afterAll(async () => {
    await startPostgres();
  });

  it("exits at once while the first is still waiting to flush visits", async () => {
    const server = await startServer({ env: { DATABASE_URL: TEST_DATABASE_URL, SHUTDOWN_TIMEOUT_MS: "30000" } });
    const key = uniqueKey("second-signal");
    try {
      stopPostgres();
      // A visit that cannot commit: the graceful shutdown would wait for it.
      const pending = await TestSocket.open(server.wsUrl(key));
      await sleep(300);
      server.proc.kill("SIGTERM");
      await sleep(500);
      expect(server.proc.exitCode).toBeNull(); // still draining
      const t0 = Date.now();
      server.proc.kill("SIGTERM");
      expect(await server.exited).toBe(130);
      expect(Date.now() - t0).toBeLessThan(3000);
      expect(pending.messages.some((m) => m.type === "hello")).toBe(false);
    } finally {
      await startPostgres();
      await server.stop();
    }
  });
});
