import { cpSync, existsSync } from "node:fs";
import { request, type IncomingHttpHeaders } from "node:http";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { uniqueKey, BROWSER_UA } from "./helpers/env.ts";
import { freshDataDir, startServer, type RunningServer, type RuntimeName, type StartOptions } from "./helpers/server.ts";

// Issue 5, "tests that do the bad thing" (abuse part, DESIGN.md §7): real
// server processes, real clients (the `ws` package, which reports a refused
// upgrade's status and can be told not to answer pings).
//
// Every client in this file comes from loopback, but Linux routes all of
// 127.0.0.0/8 to lo, so a client can bind 127.0.0.N as its source address and
// be a distinct address to the server's rate limiter and socket gate. Each
// test uses its own N, so one server serves several tests without their
// buckets meeting.

const TOKEN = "abuse-suite-admin-token-0123456789";
const BEARER = { authorization: `Bearer ${TOKEN}` };
const FAST = { RATE_LIMIT_BURST: "5", RATE_LIMIT_PER_SEC: "1" };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------- servers

async function serve(opts: StartOptions): Promise<RunningServer> {
  const dataDir = freshDataDir();
  return startServer({ timeoutMs: 60_000, ...opts, dataDir, env: { LOG_LEVEL: "debug", ...opts.env } });
}

const running: RunningServer[] = [];
async function track(p: Promise<RunningServer>): Promise<RunningServer> {
  const s = await p;
  running.push(s);
  return s;
}
afterAll(async () => {
  await Promise.all(running.map((s) => s.stop()));
});

const alive = (s: RunningServer) => s.proc.exitCode === null && s.proc.signalCode === null;

// ---------------------------------------------------------------- clients

interface Msg {
  type: string;
  total?: number;
  online?: number;
  reset?: boolean;
  visitor?: number;
}

/** An open socket that records what it receives. */
class Client {
  readonly messages: Msg[] = [];
  readonly closed: Promise<{ code: number; reason: string; at: number }>;
  #wake: Array<() => void> = [];

  readonly ws: WebSocket;

  constructor(ws: WebSocket) {
    this.ws = ws;
    this.closed = new Promise((resolve) =>
      ws.once("close", (code, reason) => {
        resolve({ code, reason: reason.toString(), at: Date.now() });
        this.#notify();
      }),
    );
    ws.on("message", (data) => {
      this.messages.push(JSON.parse(String(data)) as Msg);
      this.#notify();
    });
    ws.on("error", () => {});
  }

  #notify(): void {
    const w = this.#wake;
    this.#wake = [];
    for (const f of w) f();
  }

  /** Where the next message will go: pass it to `waitFor`/`until` to see only what comes after now. */
  mark(): number {
    return this.messages.length;
  }

  /** The first message from index `from` on (received or to come) matching `pred`; throws on close or timeout. */
  async waitFor(pred: (m: Msg) => boolean, timeoutMs = 10_000, from = 0): Promise<Msg> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      for (; from < this.messages.length; from++) if (pred(this.messages[from]!)) return this.messages[from]!;
      if (this.ws.readyState >= WebSocket.CLOSING) throw new Error(`closed before a matching message; got ${JSON.stringify(this.messages)}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no matching message within ${timeoutMs} ms; got ${JSON.stringify(this.messages)}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.#wake.push(() => (clearTimeout(t), resolve()));
      });
    }
  }

  /** Waits for a hello or count from index `from` on whose numbers satisfy `pred`. */
  until(pred: (m: Msg) => boolean, from: number, timeoutMs = 10_000): Promise<Msg> {
    return this.waitFor((m) => (m.type === "count" || m.type === "hello") && pred(m), timeoutMs, from);
  }

  send(text: string): void {
    this.ws.send(text);
  }

  close(): Promise<{ code: number }> {
    this.ws.close();
    return this.closed;
  }
}

interface ConnectOptions {
  /** Source address (127.0.0.N): a distinct client address to the server. */
  from?: string;
  headers?: Record<string, string>;
  origin?: string;
  autoPong?: boolean;
  timeoutMs?: number;
}

/** What came of one upgrade attempt. */
type Outcome =
  | { kind: "hello"; client: Client; hello: Msg }
  | { kind: "refused"; status: number; headers: IncomingHttpHeaders; body: string }
  | { kind: "closed"; code: number }
  | { kind: "error"; message: string };

/** Opens a socket and waits for its hello (the visit committed), a refusal, a close or an error. */
function connect(url: string, opts: ConnectOptions = {}): Promise<Outcome> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, {
      localAddress: opts.from,
      // A browser's User-Agent unless the case says otherwise: without one a visit is a bot's and counts nothing.
      headers: { "User-Agent": BROWSER_UA, ...opts.headers },
      origin: opts.origin,
      autoPong: opts.autoPong ?? true,
      handshakeTimeout: opts.timeoutMs ?? 10_000,
    });
    const client = new Client(ws);
    let done = false;
    const finish = (o: Outcome) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve(o);
    };
    const timer = setTimeout(() => {
      ws.terminate();
      finish({ kind: "error", message: "no hello, refusal or close in time" });
    }, (opts.timeoutMs ?? 10_000) + 2_000);
    ws.on("unexpected-response", (req, res) => {
      let body = "";
      res.on("data", (c: Buffer) => (body += c.toString()));
      res.on("end", () => {
        finish({ kind: "refused", status: res.statusCode ?? 0, headers: res.headers, body });
        req.destroy();
      });
      res.on("error", () => finish({ kind: "refused", status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    ws.on("error", (err) => finish({ kind: "error", message: err.message }));
    void client.waitFor((m) => m.type === "hello", (opts.timeoutMs ?? 10_000) + 1_000).then(
      (hello) => finish({ kind: "hello", client, hello }),
      () => undefined,
    );
    void client.closed.then((c) => setTimeout(() => finish({ kind: "closed", code: c.code }), 0));
  });
}

async function join1(url: string, opts: ConnectOptions = {}): Promise<{ client: Client; hello: Msg }> {
  const o = await connect(url, opts);
  if (o.kind !== "hello") throw new Error(`expected a hello, got ${JSON.stringify(o)}`);
  return o;
}

/** One HTTP request over node:http (so it can come from a chosen source address). */
function http(
  s: RunningServer,
  path: string,
  opts: { method?: string; headers?: Record<string, string>; body?: string; from?: string; timeoutMs?: number } = {},
): Promise<{ status: number; headers: IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: "127.0.0.1",
        port: s.port,
        path,
        method: opts.method ?? "GET",
        headers: { connection: "close", ...opts.headers },
        localAddress: opts.from,
        agent: false,
        timeout: opts.timeoutMs ?? 10_000,
      },
      (res) => {
        let body = "";
        res.on("data", (c: Buffer) => (body += c.toString()));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      },
    );
    req.on("timeout", () => req.destroy(new Error(`${path}: no answer within ${opts.timeoutMs ?? 10_000} ms`)));
    req.on("error", reject);
    req.end(opts.body);
  });
}

/** The committed total, read with the admin bearer where there is one (exempt from the rate limit). */
async function total(s: RunningServer, key: string, headers: Record<string, string> = BEARER): Promise<number> {
  const r = await http(s, `/api/counters/${encodeURIComponent(key)}`, { headers });
  expect(r.status, r.body).toBe(200);
  return (JSON.parse(r.body) as { total: number }).total;
}

function metric(text: string, name: string): number {
  const m = new RegExp(`^${name} (\\S+)$`, "m").exec(text);
  if (!m) throw new Error(`no ${name} in /metrics:\n${text}`);
  return Number(m[1]);
}

function expectRateLimited(o: Outcome | { status: number; headers: IncomingHttpHeaders; body: string }): void {
  const r = "kind" in o ? o : { kind: "refused" as const, ...o };
  expect(r.kind).toBe("refused");
  if (r.kind !== "refused") return;
  expect(r.status).toBe(429);
  expect(r.headers["retry-after"]).toMatch(/^[1-9]\d*$/);
  expect(JSON.parse(r.body)).toMatchObject({ error: "rate_limited" });
}

const wsUrl = (s: RunningServer, key: string) => s.wsUrl(key);

// ---------------------------------------------------------------- per-address limits, admin, metrics, logs

describe("abuse on Node", () => {
  // limits: tight buckets, admin API on, debug logs. proxy: addresses from
  // X-Forwarded-For, 3 sockets per address. sockets: message rate, origin
  // allowlist, a 600 ms heartbeat.
  let limits: RunningServer;
  let proxy: RunningServer;
  let sockets: RunningServer;
  // What the limits server should report in /metrics.
  let visitsOnLimits = 0;
  let refusalsOnLimits = 0;
  const floodKey = uniqueKey("flood");

  beforeAll(async () => {
    [limits, proxy, sockets] = await Promise.all([
      track(serve({ env: { ...FAST, ADMIN_TOKEN: TOKEN } })),
      track(serve({ env: { ...FAST, TRUST_PROXY_HEADER: "x-forwarded-for", MAX_SOCKETS_PER_IP: "3" } })),
      track(
        serve({
          env: {
            MESSAGE_RATE_BURST: "3",
            MESSAGE_RATE_PER_SEC: "1",
            ALLOWED_ORIGINS: "https://good.example",
            HEARTBEAT_TIMEOUT_MS: "600",
          },
        }),
      ),
    ]);
  });

  describe("rate limits", () => {
    it("counts only the bucket's worth of a flood of upgrades from one address; the rest get 429 with Retry-After", async () => {
      const from = "127.0.0.11";
      const started = Date.now();
      const outcomes = await Promise.all(Array.from({ length: 30 }, () => connect(wsUrl(limits, floodKey), { from })));
      const elapsedS = (Date.now() - started) / 1000;
      const joined = outcomes.filter((o) => o.kind === "hello");
      const refused = outcomes.filter((o) => o.kind === "refused");
      expect(outcomes.filter((o) => o.kind !== "hello" && o.kind !== "refused")).toEqual([]);
      // Burst 5 at 1/s: exactly 5 when the flood takes under a second (it takes ~0.1 s).
      expect(joined.length).toBeGreaterThanOrEqual(5);
      expect(joined.length).toBeLessThanOrEqual(5 + Math.floor(elapsedS));
      expect(refused.length).toBe(30 - joined.length);
      for (const r of refused) expectRateLimited(r);
      visitsOnLimits += joined.length;
      refusalsOnLimits += refused.length;
      // Visitor numbers 1..n: every accepted upgrade counted once, no refused one counted.
      expect(joined.map((j) => (j.kind === "hello" ? j.hello.visitor! : 0)).sort((a, b) => a - b)).toEqual(
        Array.from({ length: joined.length }, (_, i) => i + 1),
      );
      expect(await total(limits, floodKey)).toBe(joined.length);
      await sleep(300);
      expect(await total(limits, floodKey)).toBe(joined.length);
      // A refused upgrade from this address, right after, still counts nothing.
      expectRateLimited(await connect(wsUrl(limits, floodKey), { from }));
      refusalsOnLimits++;
      expect(await total(limits, floodKey)).toBe(joined.length);
      // Another address is not affected.
      const other = await join1(wsUrl(limits, floodKey), { from: "127.0.0.111" });
      visitsOnLimits++;
      expect(other.hello.total).toBe(joined.length + 1);
      await Promise.all([...joined.map((j) => (j.kind === "hello" ? j.client.close() : undefined)), other.client.close()]);
    });

    it("limits the HTTP API too: 429 with Retry-After after the burst, on /api and /badge alike", async () => {
      const from = "127.0.0.12";
      const path = `/api/counters/${encodeURIComponent(floodKey)}`;
      for (let i = 0; i < 5; i++) expect((await http(limits, path, { from })).status).toBe(200);
      const r = await http(limits, path, { from });
      expectRateLimited(r);
      expectRateLimited(await http(limits, `/badge/${encodeURIComponent(floodKey)}.svg`, { from }));
      refusalsOnLimits += 2;
      // The admin bearer is exempt (the dashboard polls), from the same address.
      expect((await http(limits, path, { from, headers: BEARER })).status).toBe(200);
      // ...but a wrong bearer is not.
      expectRateLimited(await http(limits, path, { from, headers: { authorization: "Bearer not-the-token-at-all" } }));
      refusalsOnLimits++;
      // The bucket refills at 1/s.
      await sleep(Number(r.headers["retry-after"]) * 1000 + 50);
      expect((await http(limits, path, { from })).status).toBe(200);
    });

    it("ignores X-Forwarded-For when TRUST_PROXY_HEADER is unset: forged addresses share the peer's bucket", async () => {
      const from = "127.0.0.13";
      const path = `/api/counters/${encodeURIComponent(floodKey)}`;
      for (let i = 0; i < 5; i++) {
        const r = await http(limits, path, { from, headers: { "x-forwarded-for": `203.0.113.${i + 1}` } });
        expect(r.status).toBe(200);
      }
      expectRateLimited(await http(limits, path, { from, headers: { "x-forwarded-for": "203.0.113.99" } }));
      expectRateLimited(await connect(wsUrl(limits, floodKey), { from, headers: { "x-forwarded-for": "203.0.113.98" } }));
      refusalsOnLimits += 2;
    });
  });

  describe("TRUST_PROXY_HEADER=x-forwarded-for", () => {
    const key = uniqueKey("proxy");
    const path = `/api/counters/${encodeURIComponent(key)}`;
    const xff = (v: string) => ({ "x-forwarded-for": v });

    it("gives each rightmost address its own bucket; a forged leftmost entry does not get a new one", async () => {
      for (let i = 0; i < 5; i++) expect((await http(proxy, path, { headers: xff("203.0.113.1") })).status).toBe(200);
      expectRateLimited(await http(proxy, path, { headers: xff("203.0.113.1") }));
      // A client cannot escape by prepending its own entries: our proxy appends the real one last.
      expectRateLimited(await http(proxy, path, { headers: xff("198.51.100.77, 203.0.113.1") }));
      expectRateLimited(await http(proxy, path, { headers: xff("10.9.8.7, 198.51.100.78,203.0.113.1") }));
      expectRateLimited(await connect(wsUrl(proxy, key), { headers: xff("198.51.100.79, 203.0.113.1") }));
      // Another client behind the same proxy (same peer address) has its own bucket, for the API and upgrades.
      expect((await http(proxy, path, { headers: xff("203.0.113.2") })).status).toBe(200);
      expect((await http(proxy, path, { headers: xff("203.0.113.1, 203.0.113.3") })).status).toBe(200);
      const j = await join1(wsUrl(proxy, key), { headers: xff("203.0.113.4") });
      expect(j.hello.total).toBe(1);
      await j.client.close();
      expect(await total(proxy, key, xff("203.0.113.5"))).toBe(1);
    });

    it("MAX_SOCKETS_PER_IP=3: the 4th socket from an address gets 503; after one closes a new one is accepted", async () => {
      const key2 = uniqueKey("per-ip");
      const me = xff("192.0.2.7");
      const three = [];
      for (let i = 0; i < 3; i++) three.push(await join1(wsUrl(proxy, key2), { headers: me }));
      const fourth = await connect(wsUrl(proxy, key2), { headers: me });
      expect(fourth.kind).toBe("refused");
      if (fourth.kind === "refused") {
        expect(fourth.status).toBe(503);
        expect(JSON.parse(fourth.body)).toMatchObject({ error: "too_many_sockets" });
      }
      // Another address is not capped.
      const neighbour = await join1(wsUrl(proxy, key2), { headers: xff("192.0.2.8") });
      expect(await total(proxy, key2, xff("192.0.2.9"))).toBe(4); // the 503 counted nothing
      // One closes; the others see it leave, and by then the server has released its slot.
      const mark = three[1]!.client.mark();
      await three[0]!.client.close();
      await three[1]!.client.until((m) => m.online === 3, mark);
      const again = await join1(wsUrl(proxy, key2), { headers: me });
      expect(again.hello.total).toBe(5);
      await Promise.all([three[1]!.client.close(), three[2]!.client.close(), again.client.close(), neighbour.client.close()]);
    });

    it("has no admin API without ADMIN_TOKEN: /admin/* is 404", async () => {
      for (const [method, path] of [
        ["GET", "/admin/counters"],
        ["PUT", "/admin/counters/%2F"],
        ["DELETE", "/admin/counters/%2F"],
      ] as const) {
        const r = await http(proxy, path, { method, headers: { authorization: `Bearer ${TOKEN}`, ...xff("192.0.2.100") }, body: method === "PUT" ? '{"total":0}' : undefined });
        expect(r.status, `${method} ${path}`).toBe(404);
      }
    });
  });

  describe("per-socket limits and origins", () => {
    it("closes a socket that sends a burst of pings with 1008; a slow pinger stays open", async () => {
      const key = uniqueKey("msg-rate");
      const { client: burst } = await join1(wsUrl(sockets, key));
      for (let i = 0; i < 10; i++) burst.send('{"type":"ping"}');
      const closed = await burst.closed;
      expect(closed.code).toBe(1008);
      expect(burst.messages.filter((m) => m.type === "pong").length).toBeLessThanOrEqual(3);

      const { client: slow } = await join1(wsUrl(sockets, key));
      for (let i = 0; i < 5; i++) {
        slow.send('{"type":"ping"}');
        await sleep(700);
      }
      expect(slow.messages.filter((m) => m.type === "pong")).toHaveLength(5);
      expect(slow.ws.readyState).toBe(WebSocket.OPEN);
      await slow.close();
    });

    it("closes a socket that sends an oversized message with 1009", async () => {
      const key = uniqueKey("big");
      const { client } = await join1(wsUrl(sockets, key));
      client.send(JSON.stringify({ type: "ping", pad: "x".repeat(600) }));
      expect((await client.closed).code).toBe(1009);
      expect(await total(sockets, key)).toBe(1);
    });

    it("ALLOWED_ORIGINS: another site's Origin gets 403 and no visit; the allowed origin and no Origin at all are accepted", async () => {
      const key = uniqueKey("origin");
      for (const origin of ["https://evil.example", "http://good.example", "https://good.example.evil.example", "null"]) {
        const evil = await connect(wsUrl(sockets, key), { origin });
        expect(evil.kind, origin).toBe("refused");
        if (evil.kind === "refused") {
          expect(evil.status).toBe(403);
          expect(JSON.parse(evil.body)).toMatchObject({ error: "origin_not_allowed" });
        }
      }
      expect(await total(sockets, key)).toBe(0);
      const good = await join1(wsUrl(sockets, key), { origin: "https://good.example" });
      expect(good.hello.total).toBe(1);
      // No Origin: not a browser page (it could forge any header anyway), accepted by design.
      const bare = await join1(wsUrl(sockets, key));
      expect(bare.hello.total).toBe(2);
      await Promise.all([good.client.close(), bare.client.close()]);
      expect(await total(sockets, key)).toBe(2);
    });

    it("heartbeat: a client that never answers pings is closed within ~2 × HEARTBEAT_TIMEOUT_MS and leaves online; one that answers stays", async () => {
      const key = uniqueKey("heartbeat");
      const watcher = await join1(wsUrl(sockets, key));
      const openedAt = Date.now();
      const silent = await join1(wsUrl(sockets, key), { autoPong: false });
      const mark = watcher.client.mark();
      await watcher.client.until((m) => m.online === 2, 0);
      const closed = await Promise.race([silent.client.closed, sleep(5000).then(() => null)]);
      expect(closed, "the silent client was never closed").not.toBeNull();
      expect(closed!.at - openedAt).toBeLessThanOrEqual(2 * 600 + 500);
      await watcher.client.until((m) => m.online === 1, mark, 2000);
      // The watcher answers pings (ws does by default) and is still open past 3 × timeout.
      await sleep(Math.max(0, openedAt + 3 * 600 + 300 - Date.now()));
      expect(watcher.client.ws.readyState).toBe(WebSocket.OPEN);
      watcher.client.send('{"type":"ping"}');
      await watcher.client.waitFor((m) => m.type === "pong", 2000);
      await watcher.client.close();
    });
  });

  describe("admin API and /metrics (ADMIN_TOKEN set)", () => {
    const key = uniqueKey("admin");
    const from = "127.0.0.15";
    const enc = encodeURIComponent(key);

    it("answers 401 with WWW-Authenticate without the right bearer (400 for another scheme)", async () => {
      const cases: Array<[Record<string, string>, number, RegExp]> = [
        [{}, 401, /^Bearer realm=/],
        [{ authorization: "Bearer wrong-token-wrong-token" }, 401, /^Bearer error="invalid_token"/],
        // Not a bearer credential at all: RFC 6750 §3.1 invalid_request.
        [{ authorization: TOKEN }, 400, /^Bearer error="invalid_request"/],
        [{ authorization: `Basic ${TOKEN}` }, 400, /^Bearer error="invalid_request"/],
      ];
      for (const [i, [headers, status, challenge]] of cases.entries()) {
        const r = await http(limits, "/admin/counters", { headers, from: `127.0.0.${40 + i}` });
        expect(r.status, JSON.stringify(headers)).toBe(status);
        expect(r.headers["www-authenticate"]).toMatch(challenge);
      }
      const put = await http(limits, `/admin/counters/${enc}`, { method: "PUT", body: '{"total":5}', from: "127.0.0.44" });
      expect(put.status).toBe(401);
      const del = await http(limits, `/admin/counters/${enc}`, { method: "DELETE", from: "127.0.0.45" });
      expect(del.status).toBe(401);
    });

    it("lists keys with totals, sets a lower total (watchers get reset:true), resets with DELETE, refuses bad bodies", async () => {
      const a = await join1(wsUrl(limits, key), { from });
      const b = await join1(wsUrl(limits, key), { from });
      const c = await join1(wsUrl(limits, key), { from });
      visitsOnLimits += 3;
      expect(c.hello.total).toBe(3);

      const list = await http(limits, "/admin/counters", { headers: BEARER });
      expect(list.status).toBe(200);
      const rows = (JSON.parse(list.body) as { counters: Array<{ key: string; total: number }> }).counters;
      expect(rows).toEqual(expect.arrayContaining([expect.objectContaining({ key, total: 3 }), expect.objectContaining({ key: floodKey })]));
      expect(rows.find((r) => r.key === floodKey)!.total).toBe(await total(limits, floodKey));

      const put = await http(limits, `/admin/counters/${enc}`, { method: "PUT", headers: { ...BEARER, "content-type": "application/json" }, body: '{"total":1}' });
      expect(put.status, put.body).toBe(200);
      const seen = await a.client.waitFor((m) => m.type === "count" && m.reset === true);
      expect(seen).toMatchObject({ total: 1, online: 3, reset: true });
      await b.client.waitFor((m) => m.type === "count" && m.reset === true && m.total === 1);
      expect(await total(limits, key)).toBe(1);

      const del = await http(limits, `/admin/counters/${enc}`, { method: "DELETE", headers: BEARER });
      expect(del.status).toBe(200);
      await a.client.waitFor((m) => m.type === "count" && m.reset === true && m.total === 0);
      expect(await total(limits, key)).toBe(0);

      // A known value, then bad bodies that must change nothing.
      // The body is JSON and says so: without the content type it is refused, and nothing changes.
      const untyped = await http(limits, `/admin/counters/${enc}`, { method: "PUT", headers: BEARER, body: '{"total":7}' });
      expect(untyped.status).toBe(400);
      expect(JSON.parse(untyped.body)).toMatchObject({ error: "bad_request", message: expect.stringMatching(/Content-Type/i) });
      expect(await total(limits, key)).toBe(0);
      const JSON_BEARER = { ...BEARER, "content-type": "application/json" };
      expect((await http(limits, `/admin/counters/${enc}`, { method: "PUT", headers: JSON_BEARER, body: '{"total":7}' })).status).toBe(200);
      for (const body of ["", "not json", "null", "[]", "{}", '{"total":-1}', '{"total":1.5}', '{"total":"3"}', '{"total":1e300}', '{"total":null}', '{"total":true}']) {
        const r = await http(limits, `/admin/counters/${enc}`, { method: "PUT", headers: { ...BEARER, "content-type": "application/json" }, body });
        expect(r.status, `body ${JSON.stringify(body)}`).toBe(400);
        expect(JSON.parse(r.body)).toMatchObject({ error: "bad_request" });
      }
      for (const bad of ["%01", "%FF", encodeURIComponent("x".repeat(300))]) {
        const r = await http(limits, `/admin/counters/${bad}`, { method: "PUT", headers: JSON_BEARER, body: '{"total":1}' });
        expect(r.status, bad).toBe(400);
      }
      expect((await http(limits, "/admin/counters?limit=abc", { headers: BEARER })).status).toBe(400);
      expect(await total(limits, key)).toBe(7);
      // A visit after the reset counts from the new total.
      const d = await join1(wsUrl(limits, key), { from });
      visitsOnLimits++;
      expect(d.hello.total).toBe(8);
      await Promise.all([a, b, c, d].map((j) => j.client.close()));
    });

    it("/metrics needs the bearer; with it, Prometheus text with the visits committed and the refusals counted", async () => {
      const anon = await http(limits, "/metrics");
      expect(anon.status).toBe(401);
      expect(anon.headers["www-authenticate"]).toMatch(/^Bearer /);
      expect((await http(limits, "/metrics", { headers: { authorization: "Bearer nope-nope-nope-nope" } })).status).toBe(401);
      const r = await http(limits, "/metrics", { headers: BEARER });
      expect(r.status).toBe(200);
      expect(r.headers["content-type"]).toMatch(/^text\/plain; version=0\.0\.4/);
      expect(r.body).toMatch(/^# HELP headcount_visits_committed_total /m);
      expect(r.body).toMatch(/^# TYPE headcount_visits_committed_total counter$/m);
      expect(metric(r.body, "headcount_visits_committed_total")).toBe(visitsOnLimits);
      expect(metric(r.body, "headcount_rate_limited_total")).toBe(refusalsOnLimits);
      expect(metric(r.body, "headcount_open_sockets")).toBe(0);
    });
  });

  it("logs no client address in full, even at LOG_LEVEL=debug through a flood", async () => {
    // One more flood on each server so there is something to log.
    const key = uniqueKey("logs");
    await Promise.all(Array.from({ length: 10 }, () => connect(wsUrl(limits, key), { from: "127.0.0.16" }).then((o) => (o.kind === "hello" ? o.client.close() : undefined))));
    await Promise.all(Array.from({ length: 10 }, (_, i) => connect(wsUrl(proxy, key), { headers: { "x-forwarded-for": `198.51.100.${i}` } }).then((o) => (o.kind === "hello" ? o.client.close() : undefined))));
    await sleep(200);
    const full = /\b(?:127\.\d+\.\d+\.\d+|203\.0\.113\.\d+|198\.51\.100\.\d+|192\.0\.2\.\d+|::1|::ffff:127)\b/;
    for (const s of [limits, proxy, sockets]) {
      expect(s.logs.length).toBeGreaterThan(0);
      for (const line of s.logs) {
        let checked = line;
        try {
          const rec = JSON.parse(line) as Record<string, unknown>;
          // The listen URL names the server's own address, not a client's.
          if (rec.msg === "listening") delete rec.url;
          checked = JSON.stringify(rec);
        } catch {
          // not JSON: check it as it is
        }
        expect(checked, `log line: ${line}`).not.toMatch(full);
      }
    }
  });
});

// ---------------------------------------------------------------- socket caps on every runtime

/** Opens `n` sockets, `wave` at a time, and sorts what came of each. */
async function openMany(url: string, n: number, wave: number) {
  const joined: Client[] = [];
  const refused: number[] = []; // HTTP statuses
  const closed: number[] = []; // close codes before a hello
  const errors: string[] = [];
  for (let i = 0; i < n; i += wave) {
    const outcomes = await Promise.all(Array.from({ length: Math.min(wave, n - i) }, () => connect(url, { timeoutMs: 8_000 })));
    for (const o of outcomes) {
      if (o.kind === "hello") joined.push(o.client);
      else if (o.kind === "refused") refused.push(o.status);
      else if (o.kind === "closed") closed.push(o.code);
      else errors.push(o.message);
    }
  }
  return { joined, refused, closed, errors };
}

async function healthy(s: RunningServer): Promise<void> {
  expect(alive(s), `server exited:\n${s.logs.slice(-10).join("\n")}`).toBe(true);
  const h = await http(s, "/healthz", { timeoutMs: 5_000 });
  expect(h.status).toBe(200);
  const r = await http(s, "/readyz", { timeoutMs: 5_000 });
  expect(r.status, r.body).toBe(200);
}

describe.each(["node", "bun", "deno"] as RuntimeName[])("socket caps on %s", (runtime) => {
  let capped: RunningServer;
  let limited: RunningServer;

  beforeAll(async () => {
    [capped, limited] = await Promise.all([
      track(serve({ runtime, env: { MAX_SOCKETS: "20", LOG_LEVEL: "info" } })),
      // No MAX_SOCKETS: the default derived from the open-file limit applies.
      track(serve({ runtime, fdLimit: 400, env: { LOG_LEVEL: "info" } })),
    ]);
  });

  afterAll(async () => {
    await Promise.all([capped?.stop(), limited?.stop()]);
  });

  it("MAX_SOCKETS=20: 20 open, more get 503, health checks and existing sockets keep working, and it recovers", async () => {
    const key = uniqueKey(`cap-${runtime}`);
    const first = await openMany(wsUrl(capped, key), 20, 20);
    expect(first.errors).toEqual([]);
    expect(first.joined).toHaveLength(20);
    const excess = await openMany(wsUrl(capped, key), 5, 5);
    expect(excess.errors).toEqual([]);
    expect(excess.joined).toHaveLength(0);
    expect([...excess.refused, ...excess.closed.map((c) => (c === 1013 ? 503 : c))]).toEqual([503, 503, 503, 503, 503]);
    await healthy(capped);
    expect(await total(capped, key)).toBe(20);
    // Existing sockets still work: a ping is answered, and one leaving reaches the rest.
    const [leaver, ...rest] = first.joined;
    rest[0]!.send('{"type":"ping"}');
    await rest[0]!.waitFor((m) => m.type === "pong");
    let marks = rest.map((c) => c.mark());
    await leaver!.close();
    await Promise.all(rest.map((c, i) => c.until((m) => m.online === 19, marks[i]!)));
    // A slot is free again: one more is accepted, counted and seen by everyone; then the cap holds again.
    marks = rest.map((c) => c.mark());
    const again = await connect(wsUrl(capped, key));
    expect(again.kind).toBe("hello");
    await Promise.all(rest.map((c, i) => c.until((m) => m.total === 21 && m.online === 20, marks[i]!)));
    const over = await connect(wsUrl(capped, key));
    expect(over.kind === "refused" ? over.status : over.kind === "closed" ? over.code : over.kind).toBe(over.kind === "closed" ? 1013 : 503);
    await Promise.all([...rest, ...(again.kind === "hello" ? [again.client] : [])].map((c) => c.close()));
    expect(await total(capped, key)).toBe(21);
  });

  it("at the open-file limit (ulimit -n 400, default cap): stays up, refuses the excess cleanly, keeps serving, recovers", async () => {
    const key = uniqueKey(`fd-${runtime}`);
    const many = await openMany(wsUrl(limited, key), 380, 40);
    const joined = many.joined;
    try {
      await sleep(300); // a crash takes a moment to reach the exit code
      expect(alive(limited), `${runtime} died at the open-file limit (${joined.length} sockets open):\n${limited.logs.slice(-5).join("\n")}`).toBe(true);
      // Refused cleanly: a 503 before the upgrade or a 1013 close, never a reset, a timeout or a crash.
      expect(many.errors, `${many.errors.length} failed connections, ${joined.length} joined`).toEqual([]);
      expect(new Set(many.refused)).toEqual(many.refused.length ? new Set([503]) : new Set());
      expect(new Set(many.closed)).toEqual(many.closed.length ? new Set([1013]) : new Set());
      // The cap sits below the limit (less what the process already holds), so some were refused.
      expect(many.refused.length + many.closed.length).toBeGreaterThan(0);
      expect(joined.length).toBeGreaterThan(100);
      expect(joined.length + many.refused.length + many.closed.length).toBe(380);
      await healthy(limited);
      expect(await total(limited, key)).toBe(joined.length);
      // Existing sockets keep working: pings answered, a leaver seen by the rest.
      for (const c of [joined[0]!, joined[joined.length - 1]!]) {
        c.send('{"type":"ping"}');
        await c.waitFor((m) => m.type === "pong");
      }
      const leaving = joined.splice(0, 50);
      const mark = joined[joined.length - 1]!.mark();
      await Promise.all(leaving.map((c) => c.close()));
      await joined[joined.length - 1]!.until((m) => m.online === joined.length, mark);
      // Recovered: new sockets are accepted again.
      const after = await openMany(wsUrl(limited, key), 30, 30);
      joined.push(...after.joined);
      expect(after.errors).toEqual([]);
      expect(after.joined).toHaveLength(30);
      await healthy(limited);
    } finally {
      for (const c of joined) c.ws.terminate();
    }
  });

  it("past the open-file limit with plain TCP connections (not WebSockets): survives, and serves again once they go", async () => {
    // 450 idle connections against ulimit -n 400: accept() itself fails with
    // EMFILE. No cap can refuse these; the server must not die of it
    // (Deno's accept loop did: src/runtime/deno.ts listens again).
    const { connect: tcp } = await import("node:net");
    const conns = Array.from({ length: 450 }, () => {
      const c = tcp(limited.port, "127.0.0.1");
      c.on("error", () => {});
      return c;
    });
    await sleep(1500);
    for (const c of conns) c.destroy();
    await sleep(300);
    expect(alive(limited), `${runtime} died past the open-file limit:\n${limited.logs.slice(-5).join("\n")}`).toBe(true);
    await expect
      .poll(async () => (await http(limited, "/healthz", { timeoutMs: 2_000 }).catch(() => ({ status: 0 }))).status, {
        timeout: 15_000,
        message: `${runtime} never served again:\n${limited.logs.slice(-8).join("\n")}`,
      })
      .toBe(200);
    const back = await connect(wsUrl(limited, uniqueKey(`fd-back-${runtime}`)));
    expect(back.kind).toBe("hello");
    if (back.kind === "hello") await back.client.close();
  });
});
