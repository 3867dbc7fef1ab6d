import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BROWSER_UA, postgresAvailable, TEST_DATABASE_URL, uniqueKey } from "./helpers/env.ts";
import { withSql } from "./helpers/postgres-control.ts";
import { startReceiver, type Receiver } from "./helpers/receiver.ts";
import { runToExit, startServer, type RunningServer } from "./helpers/server.ts";
import { sleep, TestSocket } from "./helpers/ws.ts";

// Several real server processes on different ports sharing one PostgreSQL:
// fan-out through LISTEN/NOTIFY and presence with a TTL (DESIGN.md §5).

const TTL = 1500;
const OTHER_UA = BROWSER_UA.replace("Chrome/131", "Chrome/130");
const pgUp = await postgresAvailable();

describe.skipIf(!pgUp)("many instances on one PostgreSQL", () => {
  const servers: RunningServer[] = [];
  const env = { DATABASE_URL: TEST_DATABASE_URL, PRESENCE_TTL_MS: String(TTL) };

  beforeAll(async () => {
    servers.push(...(await Promise.all([1, 2, 3].map(() => startServer({ env })))));
  });
  afterAll(async () => {
    await Promise.all(servers.map((s) => s.stop()));
  });

  it("a visit on one instance reaches watchers on the others, and online sums across them", async () => {
    const [a, b, c] = servers as [RunningServer, RunningServer, RunningServer];
    const key = uniqueKey("fanout");
    const wa = await TestSocket.join(a.wsUrl(key));
    const wb = await TestSocket.join(b.wsUrl(key));
    await wa.sock.until((n) => n.total === 2 && n.online === 2);

    const wc = await TestSocket.join(c.wsUrl(key));
    expect(wc.hello.total).toBe(3);
    await wa.sock.until((n) => n.total === 3 && n.online === 3);
    await wb.sock.until((n) => n.total === 3 && n.online === 3);

    const api = await (await fetch(`${b.url}/api/counters/${encodeURIComponent(key)}`)).json();
    expect(api).toMatchObject({ total: 3, online: 3 });

    await wc.sock.close();
    await wa.sock.until((n) => n.online === 2);
    await wa.sock.close();
    await wb.sock.until((n) => n.online === 1 && n.total === 3);
    await wb.sock.close();
  });

  it("visitors agree across instances: one salt per day, so the same person is one visitor wherever they land", async () => {
    const [a, b, c] = servers as [RunningServer, RunningServer, RunningServer];
    const key = uniqueKey("visitors");
    const first = await TestSocket.join(a.wsUrl(key));
    expect(first.hello).toMatchObject({ total: 1, visitors: 1 });
    // The same client on two other instances: two visits, still one visitor.
    const second = await TestSocket.join(b.wsUrl(key));
    expect(second.hello).toMatchObject({ total: 2, visitors: 1 });
    const third = await TestSocket.join(c.wsUrl(key), 10_000, { "User-Agent": OTHER_UA });
    expect(third.hello).toMatchObject({ total: 3, visitors: 2 });
    // The count reaches watchers elsewhere with the visitors of the commit that made it.
    await first.sock.waitFor((m) => m.type === "count" && m.total === 3 && m.visitors === 2);
    for (const s of servers) {
      expect(await (await fetch(`${s.url}/api/counters/${encodeURIComponent(key)}`)).json()).toMatchObject({ total: 3, visitors: 2, bots: 0 });
    }
    for (const s of [first, second, third]) await s.sock.close();
  });

  it("no instance is left with a stale total after its LISTEN connection drops", async () => {
    const [a, b] = servers as [RunningServer, RunningServer];
    const key = uniqueKey("relisten");
    const watcher = await TestSocket.join(b.wsUrl(key));
    // Cut every LISTEN connection, then count visits elsewhere while they are down.
    await withSql((sql) => sql`select pg_terminate_backend(pid) from pg_stat_activity where query ilike 'listen%' and pid <> pg_backend_pid()`);
    const visits = await Promise.all([1, 2, 3, 4].map(() => TestSocket.join(a.wsUrl(key))));
    await watcher.sock.until((n) => n.total === 5, 10_000);
    for (const v of visits) await v.sock.close();
    await watcher.sock.close();
  });

  it("an instance killed with SIGKILL drops out of online within the TTL", async () => {
    const victim = await startServer({ env });
    const [a] = servers as [RunningServer];
    const key = uniqueKey("sigkill");
    const watcher = await TestSocket.join(a.wsUrl(key));
    const doomed = await Promise.all([1, 2].map(() => TestSocket.join(victim.wsUrl(key))));
    await watcher.sock.until((n) => n.online === 3 && n.total === 3);
    const killedAt = Date.now();
    await victim.stop("SIGKILL");
    await watcher.sock.until((n) => n.online === 1, TTL * 3);
    const took = Date.now() - killedAt;
    expect(took).toBeLessThan(TTL * 3);
    expect(watcher.sock.latest?.total).toBe(3);
    for (const d of doomed) await d.sock.closed;
    await watcher.sock.close();
  });

  it("WORKERS=2 serves one port from two processes that agree on totals and online", async () => {
    const clustered = await startServer({ env: { ...env, WORKERS: "2" } });
    const listening = () => new Set(clustered.logs.filter((l) => l.includes('"listening"')).map((l) => JSON.parse(l).pid));
    try {
      await expect.poll(() => listening().size, { timeout: 20_000 }).toBe(2);
      const key = uniqueKey("workers");
      const joined = [];
      for (let i = 0; i < 6; i++) joined.push(await TestSocket.join(clustered.wsUrl(key)));
      expect(joined.map((j) => j.hello.visitor).sort((x, y) => x - y)).toEqual([1, 2, 3, 4, 5, 6]);
      for (const j of joined) await j.sock.until((n) => n.total === 6 && n.online === 6);
      for (const j of joined) await j.sock.close();
    } finally {
      expect(await clustered.stop("SIGTERM")).toBe(0);
    }
  });

  it("WORKERS with the embedded store refuses with a clear message", async () => {
    const run = await runToExit({ env: { WORKERS: "2", DATABASE_URL: "" }, dataDir: "/tmp/headcount-never" });
    expect(run.code).not.toBe(0);
    expect(run.output).toMatch(/WORKERS=2 needs DATABASE_URL/);
  });
});

// Presence snapshots span several NOTIFYs once an instance has more than a
// few dozen keys with sockets. Each must replace the sender's counts as a
// whole: watchers on another instance, of keys early and late in the
// snapshot, never see online dip over heartbeats, and an online webhook on a
// key beyond the first chunk fires exactly once.
describe.skipIf(!pgUp)("presence snapshots in many chunks", () => {
  const KEYS = 300;
  const prefix = uniqueKey("chunks");
  // ~60 characters: about 35 keys per NOTIFY, so nine chunks.
  const keyOf = (i: number) => `${prefix}/a-rather-long-article-slug-${String(i).padStart(3, "0")}`;
  const SAMPLE = [0, 1, 40, 100, 150, 200, 250, 299];
  const RULE_KEY = keyOf(250);
  let rx: Receiver;
  let a: RunningServer;
  let b: RunningServer;
  const held: TestSocket[] = [];

  beforeAll(async () => {
    rx = await startReceiver();
    // Threshold = the key's online count once B's watcher joins: 3 sockets on A + 1 on B.
    const rules = JSON.stringify([{ key: RULE_KEY, online: 4, hysteresis: 1, url: rx.url }]);
    const env = { DATABASE_URL: TEST_DATABASE_URL, PRESENCE_TTL_MS: String(TTL), WEBHOOK_RULES: rules };
    [a, b] = await Promise.all([startServer({ env }), startServer({ env })]);
  });
  afterAll(async () => {
    await Promise.all(held.map((s) => s.close()));
    await Promise.all([a?.stop(), b?.stop()]);
    await rx?.close();
  });

  it("watchers on another instance never see online dip over three heartbeats, and the online webhook fires once", async () => {
    const onA = [...Array.from({ length: KEYS }, (_, i) => keyOf(i)), RULE_KEY, RULE_KEY];
    for (let i = 0; i < onA.length; i += 50) {
      const joined = await Promise.all(onA.slice(i, i + 50).map((key) => TestSocket.join(a.wsUrl(key))));
      held.push(...joined.map((j) => j.sock));
    }
    const watchers = new Map<number, TestSocket>();
    for (const i of SAMPLE) {
      const { sock } = await TestSocket.join(b.wsUrl(keyOf(i)));
      watchers.set(i, sock);
      held.push(sock);
    }
    const expected = (i: number) => (keyOf(i) === RULE_KEY ? 4 : 2);
    for (const [i, sock] of watchers) await sock.until((n) => n.online === expected(i), TTL * 2);
    await expect.poll(() => rx.deliveries.length, { timeout: 10_000 }).toBe(1);

    const from = new Map([...watchers].map(([i, sock]) => [i, sock.messages.length]));
    await sleep(TTL + 200); // three heartbeats at TTL / 3, and a little
    for (const [i, sock] of watchers) {
      const seen = sock.messages.slice(from.get(i)).flatMap((m) => (m.type === "count" ? [m.online] : []));
      expect(seen.filter((n) => n < expected(i)), `online seen on B for key #${i}`).toEqual([]);
      expect(sock.latest?.online).toBe(expected(i));
    }
    const online = await (await fetch(`${b.url}/api/counters/${encodeURIComponent(RULE_KEY)}`)).json();
    expect(online).toMatchObject({ online: 4 });
    expect(rx.deliveries.map((d) => d.body)).toEqual([expect.objectContaining({ type: "online", key: RULE_KEY, threshold: 4 })]);
  });
});
