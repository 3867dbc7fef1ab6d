import { existsSync, readdirSync } from "node:fs";
import { request } from "node:http";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { postgresAvailable, TEST_DATABASE_URL, uniqueKey } from "./helpers/env.ts";
import { startReceiver, type Receiver } from "./helpers/receiver.ts";
import { freshDataDir, startServer, type RunningServer } from "./helpers/server.ts";
import { sleep, TestSocket, type Count } from "./helpers/ws.ts";

// The Workers build (workerd through test/helpers/worker-dev.ts) serves what
// Node, Bun and Deno serve, through the same app: the embed and dashboard
// data (issue 6), protection, admin and metrics (issue 5), and milestone
// webhooks delivered from the Durable Object's alarm (issue 7). On each
// store: the objects' SQLite, and PostgreSQL through Hyperdrive.

const ADMIN_TOKEN = "worker-admin-token-0123456789";
const SECRET = "a-webhook-secret";
const START = { runtime: "worker" as const, timeoutMs: 90_000 };
const auth = { authorization: `Bearer ${ADMIN_TOKEN}` };

async function visits(s: RunningServer, key: string, n: number): Promise<void> {
  const joined = await Promise.all(Array.from({ length: n }, () => TestSocket.join(s.wsUrl(key))));
  await Promise.all(joined.map((j) => j.sock.close()));
}

/** A WebSocket handshake whose answer we read (fetch refuses Upgrade headers): status, Retry-After, body. */
function handshake(url: string): Promise<{ status: number; retryAfter: string | undefined; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url.replace(/^ws:/, "http:"), {
      headers: { Upgrade: "websocket", Connection: "Upgrade", "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==" },
    });
    req.on("upgrade", (res, socket) => {
      socket.destroy();
      resolve({ status: res.statusCode ?? 0, retryAfter: undefined, body: "" });
    });
    req.on("response", (res) => {
      let body = "";
      res.on("data", (c: Buffer) => (body += c.toString()));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, retryAfter: res.headers["retry-after"] as string | undefined, body }));
    });
    req.on("error", reject);
    req.end();
  });
}

async function getJson<T>(s: RunningServer, path: string, headers: Record<string, string> = {}): Promise<T> {
  const res = await fetch(`${s.url}${path}`, { headers });
  expect(res.status, path).toBe(200);
  return (await res.json()) as T;
}

for (const store of ["embedded", "postgres"] as const) {
  describe(`worker on ${store === "embedded" ? "Durable Object SQLite" : "PostgreSQL (Hyperdrive)"}`, async () => {
    const enabled = store === "embedded" || (await postgresAvailable());
    // On PostgreSQL too, a fresh DATA_DIR for the objects' local state (the index object's online counts).
    const dbEnv = (): Record<string, string> => (store === "postgres" ? { DATABASE_URL: TEST_DATABASE_URL, DATA_DIR: freshDataDir() } : {});

    describe("embed, dashboard data, admin and metrics", () => {
      let s: RunningServer;
      beforeAll(async () => {
        if (enabled) s = await startServer({ ...START, env: { ...dbEnv(), ADMIN_TOKEN } });
      });
      afterAll(async () => {
        await s?.stop();
      });

      it.skipIf(!enabled)("badge, site total, top keys and history follow the visits", async () => {
        const prefix = `${uniqueKey("site")}/`;
        const a = `${prefix}a`;
        const b = `${prefix}b`;
        await visits(s, a, 3);
        const watcher = await TestSocket.join(s.wsUrl(b));

        const badge = await fetch(`${s.url}/badge/${encodeURIComponent(a)}.svg`, { headers: { Origin: "https://blog.example" } });
        expect(badge.status).toBe(200);
        expect(badge.headers.get("content-type")).toMatch(/^image\/svg\+xml/);
        expect(badge.headers.get("access-control-allow-origin")).toBe("*");
        expect(await badge.text()).toMatch(/<text[^>]*data-total[^>]*>3<\/text>/);

        // The index hears from each room at most once a second.
        await expect
          .poll(() => getJson<{ total: number; keys: number; online: number }>(s, `/api/site?prefix=${encodeURIComponent(prefix)}`), { timeout: 10_000 })
          .toEqual({ prefix, total: 4, keys: 2, online: 1, settleMs: 1500 });

        type Top = { keys: Array<{ key: string; total: number; online: number }> };
        // Keys people are on come first; the most visited follow (the shared test database has many more).
        // With today's visitors and bots as each room reported them (one person here: one visitor per key).
        await expect
          .poll(async () => (await getJson<Top>(s, "/api/top?limit=100", auth)).keys[0], { timeout: 10_000 })
          .toEqual({ key: b, total: 1, online: 1, visitors: 1, bots: 0 });
        const top = await getJson<Top>(s, "/api/top?limit=100", auth);
        if (store === "embedded") expect(top.keys).toContainEqual({ key: a, total: 3, online: 0, visitors: 1, bots: 0 });

        const minute = Math.floor(Date.now() / 60_000) * 60_000;
        const history = await getJson<{ key: string; points: Array<{ minute: number; visits: number }> }>(
          s,
          `/api/history?key=${encodeURIComponent(a)}&minutes=5`,
          auth,
        );
        expect(history.key).toBe(a);
        expect(history.points.reduce((n, p) => n + p.visits, 0)).toBe(3);
        expect(history.points.every((p) => p.minute <= minute && p.minute >= minute - 5 * 60_000)).toBe(true);

        // The dashboard's data wants the token.
        expect((await fetch(`${s.url}/api/top`)).status).toBe(401);
        await watcher.sock.close();
        await expect
          .poll(() => getJson<{ online: number }>(s, `/api/site?prefix=${encodeURIComponent(prefix)}`), { timeout: 10_000 })
          .toMatchObject({ online: 0 });
      });

      it.skipIf(!enabled)("serves the widget's modules with CORS, and the dashboard page", async () => {
        for (const path of ["/client.js", "/widget.js"]) {
          const res = await fetch(`${s.url}${path}`, { headers: { Origin: "https://blog.example" } });
          expect(res.status, path).toBe(200);
          expect(res.headers.get("content-type"), path).toMatch(/javascript/);
          expect(res.headers.get("access-control-allow-origin"), path).toBe("*");
          expect((await res.text()).length, path).toBeGreaterThan(100);
        }
        for (const path of ["/dashboard", "/dashboard.html"]) {
          const res = await fetch(`${s.url}${path}`);
          expect(res.status, path).toBe(200);
          expect(await res.text(), path).toMatch(/<html[\s\S]*dashboard/i);
        }
        expect((await fetch(`${s.url}/no-such-page`)).status).toBe(404);
      });

      it.skipIf(!enabled)("admin: lists keys, sets a total that watchers get flagged reset; /metrics wants the token", async () => {
        const key = uniqueKey("admin");
        await visits(s, key, 4);
        const watcher = await TestSocket.join(s.wsUrl(key));
        expect(watcher.hello.total).toBe(5);
        expect((await fetch(`${s.url}/admin/counters`)).status).toBe(401);

        const put = await fetch(`${s.url}/admin/counters/${encodeURIComponent(key)}`, {
          method: "PUT",
          headers: { ...auth, "content-type": "application/json" },
          body: JSON.stringify({ total: 2 }),
        });
        expect(put.status).toBe(200);
        const reset = await watcher.sock.waitFor((m): m is Count => m.type === "count" && (m as Count & { reset?: true }).reset === true);
        expect(reset).toMatchObject({ total: 2, online: 1 });
        expect((await getJson<{ total: number }>(s, `/api/counters/${encodeURIComponent(key)}`)).total).toBe(2);
        await expect
          .poll(async () => (await getJson<{ counters: Array<{ key: string; total: number }> }>(s, "/admin/counters?limit=1000", auth)).counters.find((c) => c.key === key), { timeout: 10_000 })
          .toMatchObject({ key, total: 2 });

        expect((await fetch(`${s.url}/metrics`)).status).toBe(401);
        const metrics = await fetch(`${s.url}/metrics`, { headers: auth });
        expect(metrics.status).toBe(200);
        expect(await metrics.text()).toMatch(/^headcount_rate_limited_total \d+$/m);
        await watcher.sock.close();
      });
    });

    describe("protection", () => {
      let s: RunningServer;
      beforeAll(async () => {
        if (enabled) {
          s = await startServer({
            ...START,
            env: { ...dbEnv(), RATE_LIMIT_BURST: "8", RATE_LIMIT_PER_SEC: "0", MESSAGE_RATE_BURST: "3", MESSAGE_RATE_PER_SEC: "0", MAX_SOCKETS_PER_IP: "2" },
          });
        }
      });
      afterAll(async () => {
        await s?.stop();
      });

      it.skipIf(!enabled)("per-address socket cap per key, message budget (1008), oversized (1009) and binary (1003) frames", async () => {
        const key = uniqueKey("caps");
        const a = await TestSocket.join(s.wsUrl(key));
        const b = await TestSocket.join(s.wsUrl(key));
        // MAX_SOCKETS_PER_IP=2 applies per key's object: a third socket from this address is refused, another key is not.
        const refused = await handshake(s.wsUrl(key));
        expect(refused.status).toBe(503);
        expect(refused.retryAfter).toBe("5");
        expect(JSON.parse(refused.body)).toMatchObject({ error: "too_many_sockets", message: "too many sockets from your address" });
        const other = await TestSocket.join(s.wsUrl(uniqueKey("caps-other")));
        await other.sock.close();

        // Not the exact ping frame, so the object (not the runtime's auto-response) answers, within the budget of 3.
        for (let i = 0; i < 3; i++) a.sock.ws.send('{ "type": "ping" }');
        await a.sock.waitFor(() => a.sock.messages.filter((m) => m.type === "pong").length === 3);
        a.sock.ws.send('{ "type": "ping" }');
        expect(await a.sock.closed).toEqual({ code: 1008, reason: "too many messages" });

        b.sock.ws.send("x".repeat(600));
        expect((await b.sock.closed).code).toBe(1009);
        const c = await TestSocket.join(s.wsUrl(key));
        c.sock.ws.send(new Uint8Array([1, 2, 3]));
        expect((await c.sock.closed).code).toBe(1003);
      });

      it.skipIf(!enabled)("rate limits by CF-Connecting-IP (127.0.0.1 under wrangler dev): 429 with Retry-After", async () => {
        // RATE_LIMIT_BURST=8 with no refill: the test before took 5 for its upgrades.
        let status = 200;
        let res: Response | undefined;
        let served = 0;
        for (let i = 0; i < 20 && status !== 429; i++) {
          res = await fetch(`${s.url}/api/counters?key=/`);
          status = res.status;
          if (status === 200) served++;
        }
        expect(status).toBe(429);
        expect(served).toBe(3);
        expect(Number(res!.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
        expect(await res!.json()).toMatchObject({ error: "rate_limited" });
        expect((await fetch(`${s.url}/healthz`)).status).toBe(200);
      });
    });

    describe("milestone webhooks from the object's alarm", () => {
      const cleanup: Array<() => Promise<unknown>> = [];
      afterEach(async () => {
        while (cleanup.length) await cleanup.pop()!().catch(() => {});
      });
      const receiver = async (secret?: string): Promise<Receiver> => {
        const r = await startReceiver(secret);
        cleanup.push(() => r.close());
        return r;
      };
      const server = async (rules: unknown[]): Promise<RunningServer> => {
        const srv = await startServer({ ...START, env: { ...dbEnv(), WEBHOOK_RULES: JSON.stringify(rules), WEBHOOK_RETRY_BASE_MS: "200" } });
        cleanup.push(() => srv.stop());
        return srv;
      };

      it.skipIf(!enabled)("a burst that crosses a milestone yields exactly one signed delivery; a receiver failing twice gets it on the third try", async () => {
        const rx = await receiver(SECRET);
        const flaky = await receiver();
        flaky.respond = (_req, res, attempt) => res.writeHead(attempt < 3 ? 500 : 200).end();
        const key = uniqueKey("milestone");
        const retryKey = uniqueKey("retry");
        const s = await server([
          { key, milestones: [10], url: `${rx.url}/hook`, secret: SECRET },
          { key: retryKey, milestones: [1], url: flaky.url },
        ]);

        await visits(s, key, 25);
        await expect.poll(() => rx.deliveries.length, { timeout: 15_000 }).toBe(1);
        const d = rx.deliveries[0]!;
        expect(d.signatureValid).toBe(true);
        expect(d.body).toMatchObject({ type: "milestone", key, milestone: 10 });
        expect(d.body.total).toBeGreaterThanOrEqual(10);
        expect(d.body.id).toMatch(/^[0-9a-f-]{36}$/);

        await visits(s, retryKey, 1);
        await expect.poll(() => flaky.deliveries.length, { timeout: 20_000 }).toBe(3);
        expect(new Set(flaky.deliveries.map((x) => x.id)).size).toBe(1);
        expect(flaky.deliveries[0]!.body).toMatchObject({ type: "milestone", key: retryKey, milestone: 1, total: 1 });
        await sleep(1500);
        expect(rx.deliveries).toHaveLength(1);
        expect(flaky.deliveries).toHaveLength(3);
      });
    });
  });
}

describe("worker: a read of a key nobody visited creates no storage", () => {
  let s: RunningServer;
  beforeAll(async () => {
    s = await startServer({ ...START, dataDir: freshDataDir() });
  });
  afterAll(async () => {
    await s?.stop();
  });

  /** The counter objects' SQLite files wrangler keeps under DATA_DIR (one per object that stored something). */
  function roomFiles(): string[] {
    const root = join(s.dataDir!, "wrangler-state");
    const found: string[] = [];
    const walk = (dir: string): void => {
      for (const e of readdirSync(dir, { withFileTypes: true })) {
        if (e.isDirectory()) walk(join(dir, e.name));
        else if (dir.includes("CounterRoom") && e.name.endsWith(".sqlite")) found.push(join(dir, e.name));
      }
    };
    if (existsSync(root)) walk(root);
    return found;
  }

  it("answers 0 for counters, badges and history, and only a visit makes the key's object store anything", async () => {
    const before = roomFiles().length;
    for (let i = 0; i < 5; i++) {
      const key = uniqueKey("never-visited");
      expect(await getJson(s, `/api/counters/${encodeURIComponent(key)}`)).toEqual({ key, total: 0, online: 0, visitors: 0, bots: 0 });
      const badge = await fetch(`${s.url}/badge/${encodeURIComponent(key)}.svg`);
      expect(await badge.text()).toContain(">0</text>");
      expect(await getJson(s, `/api/history?key=${encodeURIComponent(key)}`)).toMatchObject({ key, points: [] });
    }
    await sleep(500);
    expect(roomFiles().length).toBe(before);
    // The check can see storage being made: one visit, one object file more.
    await visits(s, uniqueKey("visited"), 1);
    await expect.poll(() => roomFiles().length).toBe(before + 1);
  });
});
