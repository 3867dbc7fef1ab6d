import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { uniqueKey, BROWSER_UA } from "./helpers/env.ts";
import { ROOT, startServer, type RunningServer, type RuntimeName } from "./helpers/server.ts";
import { TestSocket } from "./helpers/ws.ts";

// Hostile clients, on every runtime as a real process (Workers through
// wrangler): who may open a visit's socket (ALLOWED_ORIGINS, default `self`),
// who may read the dashboard's data without ADMIN_TOKEN (a loopback peer no
// proxy speaks for), and the security headers on the HTML pages. None of this
// depends on the store, so each runtime runs on its embedded one.

const ADMIN_TOKEN = "guard-admin-token-0123456789";
const DASHBOARD_DATA = ["/metrics", "/api/top", "/api/history?key=%2F", "/api/webhooks", "/api/origins"];

/** public/_headers as { path: { header: value } }: what Workers assets send, and what the app must send too. */
function headersFile(): Record<string, Record<string, string>> {
  const rules: Record<string, Record<string, string>> = {};
  let path: string | undefined;
  for (const line of readFileSync(join(ROOT, "public", "_headers"), "utf8").split("\n")) {
    if (line.trim() === "" || line.startsWith("#")) continue;
    if (!/^\s/.test(line)) rules[(path = line.trim())] = {};
    else if (path) {
      const at = line.indexOf(":");
      rules[path]![line.slice(0, at).trim().toLowerCase()] = line.slice(at + 1).trim();
    }
  }
  return rules;
}

interface Answer {
  status: number;
  body: string;
  /** The visit's total in its hello, when admitted. */
  total?: number;
}

/** Opens a visit's WebSocket with these headers: refused (status and body), or admitted (101) and held until its hello. */
function handshake(s: RunningServer, key: string, headers: { Origin?: string }): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(s.wsUrl(key), { origin: headers.Origin, handshakeTimeout: 10_000, headers: { "User-Agent": BROWSER_UA } });
    ws.on("unexpected-response", (req, res) => {
      let body = "";
      res.on("data", (c: Buffer) => (body += c.toString()));
      res.on("end", () => {
        req.destroy();
        resolve({ status: res.statusCode ?? 0, body });
      });
    });
    ws.on("message", (data) => {
      const msg = JSON.parse(String(data)) as { type: string; total: number };
      if (msg.type !== "hello") return;
      ws.close();
      resolve({ status: 101, body: "", total: msg.total });
    });
    ws.on("error", reject);
  });
}

async function total(s: RunningServer, key: string): Promise<number> {
  const res = await fetch(`${s.url}/api/counters/${encodeURIComponent(key)}`);
  return ((await res.json()) as { total: number }).total;
}

interface Target {
  runtime: RuntimeName;
  startTimeoutMs?: number;
}

function guardSuite(target: Target): void {
  const start = (env: Record<string, string> = {}) => startServer({ runtime: target.runtime, env, timeoutMs: target.startTimeoutMs ?? 60_000 });

  describe(`${target.runtime}: defaults (ALLOWED_ORIGINS=self, no ADMIN_TOKEN)`, () => {
    let s: RunningServer;
    beforeAll(async () => {
      s = await start();
    });
    afterAll(async () => {
      await s?.stop();
    });

    it("refuses another site's page with 403 origin_not_allowed and counts nothing; admits this server's own page and a client without Origin", async () => {
      const key = uniqueKey("origin-default");
      for (const origin of ["https://evil.example", `http://localhost:${s.port}1`, "null"]) {
        const refused = await handshake(s, key, { Origin: origin });
        expect(refused.status, origin).toBe(403);
        expect(JSON.parse(refused.body)).toMatchObject({ error: "origin_not_allowed" });
      }
      expect(await total(s, key)).toBe(0);

      // The page served by this server: its Origin is the URL the browser used, Host the same host:port.
      expect(await handshake(s, key, { Origin: s.url })).toMatchObject({ status: 101, total: 1 });
      // Behind a TLS proxy the scheme differs, the name does not.
      expect(await handshake(s, key, { Origin: s.url.replace(/^http:/, "https:") })).toMatchObject({ status: 101, total: 2 });
      // No Origin: not a browser page. A real client, to the hello.
      const { sock, hello } = await TestSocket.join(s.wsUrl(key));
      expect(hello.total).toBe(3);
      await sock.close();
    });

    it("lists the refused origins with counts in the dashboard's data", async () => {
      for (let i = 0; i < 3; i++) await handshake(s, uniqueKey("refused"), { Origin: "https://counted.example" });
      const res = await fetch(`${s.url}/api/origins`);
      expect(res.status).toBe(200);
      const body = (await res.json()) as { allowed: unknown; scope: string; refused: Array<{ origin: string; count: number }> };
      expect(body.allowed).toEqual(["self"]);
      expect(body.scope).toBe(target.runtime === "worker" ? "isolate" : "process");
      // Workers: per isolate; wrangler dev runs one, so all three refusals are in it.
      expect(body.refused).toContainEqual(expect.objectContaining({ origin: "https://counted.example", count: 3 }));
      expect(body.refused).toContainEqual(expect.objectContaining({ origin: "https://evil.example" }));
    });

    it("answers the dashboard's data to a loopback client no proxy speaks for, and 403 admin_token_required through a proxy", async () => {
      for (const path of DASHBOARD_DATA) {
        const res = await fetch(`${s.url}${path}`);
        expect(res.status, path).toBe(200);
        await res.body?.cancel();
        const proxied = await fetch(`${s.url}${path}`, { headers: { "X-Forwarded-For": "203.0.113.7" } });
        expect(proxied.status, `${path} with X-Forwarded-For`).toBe(403);
        expect(await proxied.json()).toMatchObject({ error: "admin_token_required", message: expect.stringMatching(/ADMIN_TOKEN/) });
      }
    });

    it("sends the security headers of public/_headers on the page and the dashboard, nosniff on the rest", async () => {
      const rules = headersFile();
      for (const [path, rule] of [
        ["/", "/"],
        ["/?key=%2Fabout", "/"],
        ["/dashboard", "/dashboard"],
      ] as const) {
        const res = await fetch(`${s.url}${path}`);
        expect(res.status, path).toBe(200);
        expect(res.headers.get("content-type"), path).toMatch(/text\/html/);
        await res.body?.cancel();
        for (const [name, value] of Object.entries({ ...rules["/*"], ...rules[rule] })) expect(res.headers.get(name), `${path}: ${name}`).toBe(value);
      }
      const csp = (await fetch(`${s.url}/dashboard`)).headers.get("content-security-policy");
      expect(csp).toMatch(/frame-ancestors 'none'/);
      expect(csp).not.toMatch(/unsafe-inline/);
      for (const path of ["/widget.js", "/client.js", "/app.js", "/style.css"]) {
        const res = await fetch(`${s.url}${path}`);
        expect(res.status, path).toBe(200);
        expect(res.headers.get("x-content-type-options"), path).toBe("nosniff");
        // The widget and its module are loaded by other sites: no same-origin resource policy on them.
        expect(res.headers.get("cross-origin-resource-policy"), path).toBeNull();
        await res.body?.cancel();
      }
    });
  });

  describe(`${target.runtime}: ADMIN_TOKEN and ALLOWED_ORIGINS=self,https://a.example`, () => {
    let s: RunningServer;
    beforeAll(async () => {
      s = await start({ ADMIN_TOKEN, ALLOWED_ORIGINS: "self,https://a.example" });
    });
    afterAll(async () => {
      await s?.stop();
    });

    it("admits the listed site and this server's own page, refuses the rest", async () => {
      const key = uniqueKey("origin-list");
      expect(await handshake(s, key, { Origin: "https://a.example" })).toMatchObject({ status: 101, total: 1 });
      expect(await handshake(s, key, { Origin: s.url })).toMatchObject({ status: 101, total: 2 });
      for (const origin of ["https://b.example", "http://a.example"]) expect((await handshake(s, key, { Origin: origin })).status, origin).toBe(403);
      expect(await total(s, key)).toBe(2);
    });

    it("wants the bearer token for the dashboard's data, from this machine too", async () => {
      for (const path of DASHBOARD_DATA) {
        const bare = await fetch(`${s.url}${path}`);
        expect(bare.status, path).toBe(401);
        await bare.body?.cancel();
        const wrong = await fetch(`${s.url}${path}`, { headers: { Authorization: "Bearer not-the-token-at-all" } });
        expect(wrong.status, path).toBe(401);
        await wrong.body?.cancel();
        const ok = await fetch(`${s.url}${path}`, { headers: { Authorization: `Bearer ${ADMIN_TOKEN}`, "X-Forwarded-For": "203.0.113.7" } });
        expect(ok.status, path).toBe(200);
        await ok.body?.cancel();
      }
      const origins = await fetch(`${s.url}/api/origins`, { headers: { Authorization: `Bearer ${ADMIN_TOKEN}` } });
      expect(await origins.json()).toMatchObject({ allowed: ["self", "https://a.example"] });
    });
  });
}

guardSuite({ runtime: "node" });
guardSuite({ runtime: "bun" });
guardSuite({ runtime: "deno" });
guardSuite({ runtime: "worker", startTimeoutMs: 90_000 });

describe("node: ALLOWED_ORIGINS=*", () => {
  let s: RunningServer;
  beforeAll(async () => {
    s = await startServer({ runtime: "node", env: { ALLOWED_ORIGINS: "*" } });
  });
  afterAll(async () => {
    await s?.stop();
  });

  it("admits every site", async () => {
    const key = uniqueKey("origin-any");
    for (const [i, origin] of ["https://evil.example", "https://a.example", "null", s.url].entries()) {
      expect(await handshake(s, key, { Origin: origin }), origin).toMatchObject({ status: 101, total: i + 1 });
    }
  });
});
