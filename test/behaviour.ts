import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BROWSER_UA, CRAWLER_UA, postgresAvailable, TEST_DATABASE_URL, uniqueKey } from "./helpers/env.ts";
import { freshDataDir, runToExit, startServer, type RuntimeName, type RunningServer } from "./helpers/server.ts";
import { closeCodeOf, Op, rawHandshake } from "./helpers/raw-ws.ts";
import { sseUrl, StreamRefused, TestStream } from "./helpers/sse.ts";
import { sleep, TestSocket, type Closed, type Hello, type Received } from "./helpers/ws.ts";

// The one behaviour suite (DESIGN.md §8): written once, run against a real
// child process of every runtime and every store. Runtime differences are
// capability flags here, never copied tests.

export interface Target {
  runtime: RuntimeName;
  store: "embedded" | "postgres";
  /** The runtime's embedded store holds a directory lock (Node, Bun, Deno). */
  dataDirLock: boolean;
  /**
   * The 426 for a plain GET of the socket path carries `Upgrade: websocket`
   * (default true). workerd treats Upgrade as a connection header and drops it
   * from any response that is not a 101, so the Workers build cannot send it.
   */
  upgradeHeaderOn426?: boolean;
  /** SIGTERM ends the server gracefully, sockets and streams told 1001 (not workerd: there is no process to shut down). */
  gracefulShutdown?: boolean;
  startTimeoutMs?: number;
}

/** The two ways a page holds its visit: the WebSocket, and the event stream it falls back to. */
const TRANSPORTS = ["websocket", "sse"] as const;
type Transport = (typeof TRANSPORTS)[number];

/** What the cases need of a client, whichever transport carries it. */
interface Client {
  readonly messages: Received[];
  readonly latest: { total: number; online: number } | undefined;
  until(pred: (n: { total: number; online: number }) => boolean, timeoutMs?: number): Promise<{ total: number; online: number }>;
  waitFor(pred: (m: Received) => boolean, timeoutMs?: number): Promise<Received>;
  close(): Promise<unknown>;
}

function joiner(server: () => RunningServer, transport: Transport) {
  return (key: string, resume?: string, headers?: Record<string, string>): Promise<{ sock: Client; hello: Hello }> =>
    transport === "websocket"
      ? TestSocket.join(server().wsUrl(key, resume), 10_000, headers)
      : TestStream.join(sseUrl(server().url, key, resume), 10_000, headers);
}

async function counter(server: RunningServer, key: string): Promise<{ total: number; online: number; visitors: number; bots: number }> {
  const res = await fetch(`${server.url}/api/counters/${encodeURIComponent(key)}`);
  expect(res.status).toBe(200);
  return (await res.json()) as { total: number; online: number; visitors: number; bots: number };
}

type Day = { day: string; visits: number; visitors: number; bots: number };

async function daily(server: RunningServer, key: string | null, days = 1): Promise<{ key: string | null; days: Day[] }> {
  const res = await fetch(`${server.url}/api/daily?days=${days}${key === null ? "" : `&key=${encodeURIComponent(key)}`}`);
  expect(res.status).toBe(200);
  return (await res.json()) as { key: string | null; days: Day[] };
}

/** Another browser's User-Agent: another visitor from the same address. */
const OTHER_UA = BROWSER_UA.replace("Chrome/131", "Chrome/130");

export function behaviourSuite(target: Target): void {
  const name = `${target.runtime} on ${target.store === "embedded" ? "the embedded store" : "PostgreSQL"}`;

  describe(name, async () => {
    const enabled = target.store === "embedded" || (await postgresAvailable());
    let server: RunningServer;
    let dataDir: string | undefined;
    // A keep-alive every second, so a case sees one without waiting the default 15 s.
    const env: Record<string, string> = { SSE_KEEPALIVE_MS: "1000", ...(target.store === "postgres" ? { DATABASE_URL: TEST_DATABASE_URL } : {}) };
    const start = () =>
      startServer({ runtime: target.runtime, env, dataDir, timeoutMs: target.startTimeoutMs ?? 60_000 });

    beforeAll(async () => {
      if (!enabled) return;
      dataDir = target.store === "embedded" ? freshDataDir() : undefined;
      server = await start();
    });
    afterAll(async () => {
      await server?.stop();
    });

    it.skipIf(!enabled)("serves the page and its health endpoints", async () => {
      const page = await fetch(`${server.url}/`);
      expect(page.status).toBe(200);
      expect(page.headers.get("content-type")).toMatch(/text\/html/);
      expect(await page.text()).toMatch(/headcount/i);
      expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
      const ready = await fetch(`${server.url}/readyz`);
      expect(ready.status).toBe(200);
      expect(await ready.json()).toEqual({ status: "ready" });
    });

    for (const transport of TRANSPORTS) {
      const join = joiner(() => server, transport);

      it.skipIf(!enabled)(`${transport}: counts a visit and broadcasts it to every watcher of that key and no other`, async () => {
        const key = uniqueKey("bcast");
        const other = uniqueKey("other");
        const a = await join(key);
        const b = await join(key);
        const o = await join(other);
        expect(a.hello.visitor).toBe(1);
        expect(b.hello.visitor).toBe(2);
        expect(o.hello).toMatchObject({ key: other, total: 1, visitor: 1 });

        const c = await join(key);
        expect(c.hello).toMatchObject({ key, total: 3, visitor: 3 });
        expect(c.hello.resume).toMatch(/\S{10,}/);
        await a.sock.until((n) => n.total === 3 && n.online === 3);
        await b.sock.until((n) => n.total === 3 && n.online === 3);

        await sleep(300);
        expect(o.sock.messages.every((m) => m.type === "pong" || m.key === other)).toBe(true);
        expect(o.sock.latest).toEqual({ total: 1, online: 1 });
        expect(await counter(server, other)).toMatchObject({ total: 1, online: 1 });
        expect(await counter(server, key)).toMatchObject({ key, total: 3, online: 3 });
        for (const s of [a, b, c, o]) await s.sock.close();
      });

      it.skipIf(!enabled)(`${transport}: online rises and falls as connections open and close`, async () => {
        const key = uniqueKey("online");
        const watcher = await join(key);
        const others = await Promise.all([1, 2, 3].map(() => join(key)));
        await watcher.sock.until((n) => n.online === 4 && n.total === 4);
        await others[0]!.sock.close();
        await others[1]!.sock.close();
        await watcher.sock.until((n) => n.online === 2);
        expect(await counter(server, key)).toMatchObject({ total: 4, online: 2 });
        await others[2]!.sock.close();
        await watcher.sock.close();
        await expect.poll(async () => (await counter(server, key)).online, { timeout: 5000 }).toBe(0);
      });

      /**
       * A connection whose end is read as the server sent it: on a WebSocket, the close frame itself over raw
       * TCP (workerd under wrangler dev finishes the closing handshake of a socket closed from another
       * request ~11 s late, or later; the frame comes at once), on a stream its end event.
       */
      const held = async (key: string, resume?: string): Promise<{ hello: Hello; ended(): Promise<Closed>; drop(): void }> => {
        if (transport === "sse") {
          const { sock, hello } = await TestStream.join(sseUrl(server.url, key, resume));
          return { hello, ended: () => sock.closed, drop: () => void sock.close() };
        }
        const path = `/ws?key=${encodeURIComponent(key)}${resume ? `&resume=${encodeURIComponent(resume)}` : ""}`;
        const { conn, hello } = await rawHandshake(server.port, path);
        const ended = async (): Promise<Closed> => {
          await conn.until(() => conn.frames.some((f) => f.opcode === Op.close), 10_000);
          const f = conn.frames.find((x) => x.opcode === Op.close);
          return f ? { code: closeCodeOf(f) as number, reason: f.payload.subarray(2).toString() } : { code: 1006, reason: "no close frame" };
        };
        return { hello: hello as Hello, ended, drop: () => conn.destroy() };
      };

      it.skipIf(!enabled)(`${transport}: a reconnect with the resume token is not a new visit; a token for another key is`, async () => {
        const key = uniqueKey("resume");
        const first = await join(key);
        await first.sock.close();
        const again = await join(key, first.hello.resume);
        expect(again.hello).toMatchObject({ total: 1, visitor: 1 });
        const forged = await join(key, first.hello.resume.replace(/.$/, (ch) => (ch === "A" ? "B" : "A")));
        expect(forged.hello).toMatchObject({ total: 2, visitor: 2 });
        const elsewhere = uniqueKey("resume-other");
        const moved = await join(elsewhere, first.hello.resume);
        expect(moved.hello).toMatchObject({ total: 1, visitor: 1 });
        expect((await counter(server, key)).total).toBe(2);
        for (const s of [again, forged, moved]) await s.sock.close();
      });

      it.skipIf(!enabled)(`${transport}: one resume token, one connection: a second use takes over, the first gets 1008 "resumed elsewhere", online stays 1`, async () => {
        const key = uniqueKey("takeover");
        const first = await held(key);
        const second = await held(key, first.hello.resume);
        expect(second.hello).toMatchObject({ total: 1, visitor: 1, online: 1 });
        const third = await held(key, first.hello.resume);
        expect(third.hello).toMatchObject({ total: 1, visitor: 1, online: 1 });
        const resumedElsewhere = { code: 1008, reason: "resumed elsewhere" };
        expect(await Promise.all([first.ended(), second.ended()])).toEqual([resumedElsewhere, resumedElsewhere]);
        const watcher = await join(key);
        await watcher.sock.until((n) => n.total === 2 && n.online === 2);
        expect(await counter(server, key)).toMatchObject({ total: 2, online: 2 });
        third.drop();
        await watcher.sock.close();
      });

      it.skipIf(!enabled)(`${transport}: visitors: the same client twice is one visitor, another user agent another; a crawler is a bot and nothing else; a resume changes nothing`, async () => {
        const key = uniqueKey("visitors");
        const a = await join(key);
        expect(a.hello).toMatchObject({ total: 1, visitors: 1, visitor: 1 });
        const b = await join(key);
        expect(b.hello).toMatchObject({ total: 2, visitors: 1, visitor: 2 });
        const c = await join(key, undefined, { "User-Agent": OTHER_UA });
        expect(c.hello).toMatchObject({ total: 3, visitors: 2, visitor: 3 });
        await a.sock.waitFor((m) => m.type === "count" && m.visitors === 2 && m.total === 3);
        const bot = await join(key, undefined, { "User-Agent": CRAWLER_UA });
        // A bot watches the counts but is not a visit, a visitor, or online.
        expect(bot.hello).toMatchObject({ total: 3, visitors: 2, visitor: 0, online: 3 });
        expect(await counter(server, key)).toMatchObject({ total: 3, online: 3, visitors: 2, bots: 1 });
        await a.sock.close();
        const again = await join(key, a.hello.resume);
        expect(again.hello).toMatchObject({ total: 3, visitors: 2 });
        expect(await counter(server, key)).toMatchObject({ total: 3, visitors: 2, bots: 1 });
        const today = new Date().toISOString().slice(0, 10);
        expect(await daily(server, key)).toEqual({ key, days: [{ day: today, visits: 3, visitors: 2, bots: 1 }] });
        // The server's day: distinct over every key (these two people at least), bots included.
        await expect.poll(async () => (await daily(server, null)).days[0]!.visitors, { timeout: 5000 }).toBeGreaterThanOrEqual(2);
        expect((await daily(server, null)).days[0]!.bots).toBeGreaterThanOrEqual(1);
        for (const s of [b, c, bot, again]) await s.sock.close();
      });
    }

    it.skipIf(!enabled)("the client's way back from an event stream: a WebSocket with its token takes the stream's place, not a second one", async () => {
      const key = uniqueKey("takeover-switch");
      const stream = await TestStream.join(sseUrl(server.url, key));
      const socket = await TestSocket.join(server.wsUrl(key, stream.hello.resume));
      expect(await stream.sock.closed).toEqual({ code: 1008, reason: "resumed elsewhere" });
      expect(socket.hello).toMatchObject({ total: 1, visitor: 1, online: 1 });
      expect(await counter(server, key)).toMatchObject({ total: 1, online: 1 });
      await socket.sock.close();
    });

    it.skipIf(!enabled)("a WebSocket and an event stream on one key count together and see each other", async () => {
      const key = uniqueKey("mixed");
      const ws = await TestSocket.join(server.wsUrl(key));
      const sse = await TestStream.join(sseUrl(server.url, key));
      expect(sse.hello).toMatchObject({ total: 2, visitor: 2, online: 2 });
      await ws.sock.until((n) => n.total === 2 && n.online === 2);
      const third = await TestSocket.join(server.wsUrl(key));
      await sse.sock.until((n) => n.total === 3 && n.online === 3);
      // Switching transports with the token is the same page view.
      await ws.sock.close();
      const switched = await TestStream.join(sseUrl(server.url, key, ws.hello.resume));
      expect(switched.hello).toMatchObject({ total: 3, visitor: 1 });
      await third.sock.until((n) => n.online === 3);
      for (const s of [sse, third, switched]) await s.sock.close();
      await expect.poll(async () => (await counter(server, key)).online, { timeout: 5000 }).toBe(0);
      expect((await counter(server, key)).total).toBe(3);
    });

    it.skipIf(!enabled)("an event stream: ids carry seq and token, EventSource's Last-Event-ID resumes, keep-alives flow, refusals are statuses", async () => {
      const key = uniqueKey("stream");
      const first = await TestStream.join(sseUrl(server.url, key));
      expect(first.sock.response.headers.get("content-type")).toMatch(/^text\/event-stream/);
      expect(first.sock.response.headers.get("cache-control")).toMatch(/no-store/);
      expect(first.sock.retryMs).toBeGreaterThanOrEqual(1000);
      const hello = first.sock.events.find((e) => e.event === "hello")!;
      expect(hello.id).toBe(`${first.hello.seq}:${first.hello.resume}`);
      // SSE_KEEPALIVE_MS=1000 in this suite: the opening comment, then keep-alives.
      await expect.poll(() => first.sock.comments, { timeout: 5000 }).toBeGreaterThanOrEqual(2);
      const lastId = first.sock.lastEventId;
      await first.sock.close();
      const again = await TestStream.join(sseUrl(server.url, key), 10_000, { "Last-Event-ID": lastId });
      expect(again.hello).toMatchObject({ total: 1, visitor: 1 });
      await again.sock.close();

      for (const [url, headers, status] of [
        [`${server.url}/sse?key=`, {}, 400],
        [`${server.url}/sse?key=%zz`, {}, 400],
        [sseUrl(server.url, key), { Accept: "text/html" }, 406],
      ] as const) {
        const refused = await TestStream.open(url, { headers }).then(
          () => null,
          (err: unknown) => err,
        );
        expect(refused, url).toBeInstanceOf(StreamRefused);
        expect((refused as StreamRefused).status, url).toBe(status);
      }
      expect((await fetch(sseUrl(server.url, key), { method: "HEAD" })).status).toBe(405);
      // Origins: a page ALLOWED_ORIGINS lets in (here the server's own, the default) may read the stream; another is refused.
      const own = await TestStream.join(sseUrl(server.url, key, again.hello.resume), 10_000, { Origin: server.url });
      expect(own.sock.response.headers.get("access-control-allow-origin")).toBe(server.url);
      await own.sock.close();
      const foreign = await TestStream.open(sseUrl(server.url, key), { headers: { Origin: "https://elsewhere.example" } }).catch((err: unknown) => err);
      expect((foreign as StreamRefused).status).toBe(403);
      // workerd notices a dropped stream when a write fails: at a keep-alive (wrangler dev's proxy holds the connection).
      await expect.poll(async () => (await counter(server, key)).online, { timeout: 5000 }).toBe(0);
      expect((await counter(server, key)).total).toBe(1);
    });

    it.skipIf(!enabled)("the pixel counts one visit, shown to watchers: a no-store GIF, the key from the Referer without key=, HEAD counts nothing", async () => {
      const key = uniqueKey("pixel");
      const watcher = await TestSocket.join(server.wsUrl(key));
      const browser = { "User-Agent": BROWSER_UA };
      const res = await fetch(`${server.url}/pixel.gif?key=${encodeURIComponent(key)}`, { headers: browser });
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toBe("image/gif");
      expect(res.headers.get("cache-control")).toMatch(/no-store/);
      const bytes = new Uint8Array(await res.arrayBuffer());
      expect(new TextDecoder().decode(bytes.slice(0, 6))).toBe("GIF89a");
      expect([bytes[6], bytes[8]]).toEqual([1, 1]); // 1×1
      await watcher.sock.until((n) => n.total === 2 && n.online === 1);

      // Without key=: the Referer's path, as location.pathname has it (the widget's default key).
      const page = uniqueKey("pixel-page");
      await (await fetch(`${server.url}/pixel.gif`, { headers: { ...browser, Referer: `http://127.0.0.1:${server.port}${page}?utm=x` } })).arrayBuffer();
      // On this server's own page, the page's ?key=.
      await (await fetch(`${server.url}/pixel.gif`, { headers: { ...browser, Referer: `http://127.0.0.1:${server.port}/?key=${encodeURIComponent(key)}` } })).arrayBuffer();
      const head = await fetch(`${server.url}/pixel.gif?key=${encodeURIComponent(key)}`, { method: "HEAD" });
      expect(head.status).toBe(200);
      const bad = await fetch(`${server.url}/pixel.gif?key=%zz`);
      expect(bad.status).toBe(400);
      expect(bad.headers.get("content-type")).toBe("image/gif");
      await bad.arrayBuffer();

      await watcher.sock.until((n) => n.total === 3);
      expect((await counter(server, page)).total).toBe(1);
      expect(await counter(server, key)).toMatchObject({ total: 3, online: 1 });
      // A crawler's fetch of the pixel, and one without a User-Agent, are bots: the same GIF, no visit.
      expect((await fetch(`${server.url}/pixel.gif?key=${encodeURIComponent(key)}`, { headers: { "User-Agent": CRAWLER_UA } })).status).toBe(200);
      expect((await fetch(`${server.url}/pixel.gif?key=${encodeURIComponent(key)}`, { headers: { "User-Agent": "" } })).status).toBe(200);
      expect(await counter(server, key)).toMatchObject({ total: 3, visitors: 1, bots: 2 });
      // The badge shows the total and counts nothing.
      await (await fetch(`${server.url}/badge/${encodeURIComponent(key)}.svg`)).text();
      expect((await counter(server, key)).total).toBe(3);
      await watcher.sock.close();
    });

    it.skipIf(!enabled)("answers ping with pong", async () => {
      const { sock } = await TestSocket.join(server.wsUrl(uniqueKey("ping")));
      sock.ws.send(JSON.stringify({ type: "ping" }));
      await sock.waitFor((m) => m.type === "pong");
      await sock.close();
    });

    it.skipIf(!enabled)("bad input gets a clear answer and changes nothing", async () => {
      const key = uniqueKey("bad");
      const seed = await TestSocket.join(server.wsUrl(key));
      // Its token opens the sockets below without new visits (each after the last has closed: one socket per token).
      await seed.sock.close();
      const before = await counter(server, key);

      const plain = await fetch(`${server.url}/ws?key=${encodeURIComponent(key)}`);
      expect(plain.status).toBe(426);
      if (target.upgradeHeaderOn426 ?? true) expect(plain.headers.get("upgrade")).toMatch(/websocket/i);

      for (const bad of ["", "a\u0000b", "tab\there", "x".repeat(257), "é".repeat(129)]) {
        const res = await fetch(`${server.url}/api/counters?key=${encodeURIComponent(bad)}`);
        expect(res.status, JSON.stringify(bad)).toBe(400);
        expect(((await res.json()) as { error: string }).error).toBe("invalid_key");
        await expect(TestSocket.open(server.wsUrl(bad), 5000), JSON.stringify(bad)).rejects.toThrow();
      }
      const unknown = await fetch(`${server.url}/no/such/route.json`);
      expect(unknown.status).toBe(404);
      expect(await unknown.json()).toMatchObject({ error: "not_found" });

      const big = await TestSocket.open(server.wsUrl(key, seed.hello.resume));
      big.ws.send(JSON.stringify({ type: "ping", pad: "x".repeat(4096) }));
      expect((await big.closed).code).toBe(1009);

      const garbage = await TestSocket.open(server.wsUrl(key, seed.hello.resume));
      garbage.ws.send("{not json");
      expect((await garbage.closed).code).toBe(1003);

      const binary = await TestSocket.open(server.wsUrl(key, seed.hello.resume));
      binary.ws.send(new Uint8Array([1, 2, 3]));
      expect((await binary.closed).code).toBe(1003);

      const strange = await TestSocket.open(server.wsUrl(key, seed.hello.resume));
      strange.ws.send(JSON.stringify({ type: "reset" }));
      expect((await strange.closed).code).toBe(1003);

      await expect.poll(async () => (await counter(server, key)).online, { timeout: 5000 }).toBe(0);
      expect((await counter(server, key)).total).toBe(before.total);
    });

    it.skipIf(!enabled)("totals survive a restart; a graceful stop ends sockets and streams with 1001", async () => {
      const key = uniqueKey("restart");
      for (let i = 0; i < 3; i++) await (await TestSocket.join(server.wsUrl(key))).sock.close();
      const stream = await TestStream.join(sseUrl(server.url, uniqueKey("restart-stream")));
      const socket = await TestSocket.join(server.wsUrl(uniqueKey("restart-socket")));
      expect(await server.stop("SIGTERM")).toBe(0);
      if (target.gracefulShutdown ?? true) {
        expect(await stream.sock.closed).toEqual({ code: 1001, reason: "server shutting down" });
        expect((await socket.sock.closed).code).toBe(1001);
      }
      server = await start();
      expect((await counter(server, key)).total).toBe(3);
      const next = await TestSocket.join(server.wsUrl(key));
      expect(next.hello).toMatchObject({ total: 4, visitor: 4 });
      await next.sock.close();
    });

    it.skipIf(!enabled || !target.dataDirLock || target.store !== "embedded")(
      "a second server on the same data directory exits at once with the lock message",
      async () => {
        const second = await runToExit({ runtime: target.runtime, dataDir });
        expect(second.code).not.toBe(0);
        expect(second.output).toMatch(/locked by another headcount process \(pid \d+\)/);
        expect((await fetch(`${server.url}/readyz`)).status).toBe(200);
      },
    );
  });
}
