import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { BROWSER_UA, uniqueKey } from "./helpers/env.ts";
import { privateDatabase } from "./helpers/private-database.ts";
import { sseUrl, StreamRefused, TestStream } from "./helpers/sse.ts";
import { freshDataDir, startServer, type RunningServer, type RuntimeName } from "./helpers/server.ts";
import { pgUp } from "./helpers/store-env.ts";
import { TestSocket } from "./helpers/ws.ts";

// MAX_KEYS (issue 12, "Keys without end"): a server started with MAX_KEYS=3
// counts three keys; a fourth is refused on every transport with a clear
// answer before anything starts (403 key_limit), creates no row, and the
// three keep counting. Deleting a key (admin) frees its place. Real servers,
// real clients, on the embedded store of every runtime and on PostgreSQL (a
// database of its own: the shared one holds other suites' keys).

const TOKEN = "key-limit-admin-token-0123456789";
const BEARER = { authorization: `Bearer ${TOKEN}` };
/** A person's browser: a client without one is a bot and counts no visit. */
const BROWSER = { "User-Agent": BROWSER_UA };

/** A WebSocket handshake's refusal: the status and JSON body (the `ws` package reports both). */
function refusedHandshake(url: string): Promise<{ status: number; body: { error?: string; message?: string } }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers: BROWSER });
    ws.on("open", () => {
      ws.close();
      reject(new Error("the handshake was accepted"));
    });
    ws.on("unexpected-response", (_req, res) => {
      let text = "";
      res.on("data", (chunk: Buffer) => (text += chunk.toString()));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text || "{}") as { error?: string } }));
    });
    ws.on("error", () => {});
  });
}

async function total(s: RunningServer, key: string): Promise<number> {
  const res = await fetch(`${s.url}/api/counters?key=${encodeURIComponent(key)}`);
  return ((await res.json()) as { total: number }).total;
}

async function listed(s: RunningServer): Promise<string[]> {
  const res = await fetch(`${s.url}/admin/counters?limit=100`, { headers: BEARER });
  return ((await res.json()) as { counters: Array<{ key: string }> }).counters.map((c) => c.key).sort();
}

async function metric(s: RunningServer, name: string): Promise<number | null> {
  const text = await (await fetch(`${s.url}/metrics`, { headers: BEARER })).text();
  const line = text.split("\n").find((l) => l.startsWith(`${name} `));
  return line ? Number(line.split(" ")[1]) : null;
}

async function visit(s: RunningServer, key: string): Promise<number> {
  const { sock, hello } = await TestSocket.join(s.wsUrl(key), 20_000);
  await sock.close();
  return hello.total;
}

function keyLimitSuite(runtime: RuntimeName, store: "embedded" | "postgres", databaseUrl?: () => string): void {
  describe(`MAX_KEYS=3 on ${runtime}, ${store}`, () => {
    let s: RunningServer;
    const keys = [uniqueKey("cap-a"), uniqueKey("cap-b"), uniqueKey("cap-c")];
    const fourth = uniqueKey("cap-d");
    beforeAll(async () => {
      const env: Record<string, string> = { MAX_KEYS: "3", ADMIN_TOKEN: TOKEN };
      if (databaseUrl) env.DATABASE_URL = databaseUrl();
      if (runtime === "worker" || !databaseUrl) env.DATA_DIR = freshDataDir();
      s = await startServer({ runtime, env, timeoutMs: 90_000 });
    }, 120_000);
    afterAll(async () => {
      await s?.stop();
    });

    it("three keys count; a fourth is refused on every transport with 403 key_limit and creates no row; the three still count", async () => {
      for (const key of keys) expect(await visit(s, key)).toBe(1);

      const ws = await refusedHandshake(s.wsUrl(fourth));
      expect(ws.status).toBe(403);
      expect(ws.body.error).toBe("key_limit");
      expect(ws.body.message).toMatch(/at most 3 keys/);

      const stream = await TestStream.open(sseUrl(s.url, fourth)).then(
        () => null,
        (err: unknown) => err,
      );
      expect(stream).toBeInstanceOf(StreamRefused);
      expect((stream as StreamRefused).status).toBe(403);
      expect(JSON.parse((stream as StreamRefused).body).error).toBe("key_limit");

      const pixel = await fetch(`${s.url}/pixel.gif?key=${encodeURIComponent(fourth)}`, { headers: BROWSER });
      expect(pixel.status).toBe(403);
      expect(pixel.headers.get("content-type")).toBe("image/gif");

      expect(await total(s, fourth)).toBe(0);
      expect(await listed(s)).toEqual([...keys].sort());
      // Existing keys keep counting on every transport.
      expect(await visit(s, keys[0]!)).toBe(2);
      expect((await fetch(`${s.url}/pixel.gif?key=${encodeURIComponent(keys[1]!)}`, { headers: BROWSER })).status).toBe(200);
      const live = await TestStream.open(sseUrl(s.url, keys[2]!));
      expect((await live.hello()).total).toBe(2);
      await live.close();
      expect(await total(s, keys[1]!)).toBe(2);
      if (runtime !== "worker") {
        expect(await metric(s, "headcount_keys")).toBe(3);
        expect(await metric(s, "headcount_key_limit_refusals_total")).toBeGreaterThanOrEqual(3);
      }
    });

    it("deleting a key (admin) frees its place: the fourth key then counts, and a fifth is refused", async () => {
      const del = await fetch(`${s.url}/admin/counters/${encodeURIComponent(keys[0]!)}`, { method: "DELETE", headers: BEARER });
      expect(del.status).toBe(200);
      expect(await total(s, keys[0]!)).toBe(0);
      expect(await visit(s, fourth)).toBe(1);
      expect((await refusedHandshake(s.wsUrl(uniqueKey("cap-e")))).status).toBe(403);
      expect(await listed(s)).toEqual([keys[1]!, keys[2]!, fourth].sort());
    });
  });
}

for (const runtime of ["node", "bun", "deno", "worker"] as RuntimeName[]) keyLimitSuite(runtime, "embedded");

describe.skipIf(!pgUp)("on PostgreSQL", () => {
  // A database of its own: the shared test database holds other suites' keys.
  const url = privateDatabase("headcount_keys");
  keyLimitSuite("node", "postgres", () => url.href);
});
