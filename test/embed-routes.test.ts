import { describe, expect, it } from "vitest";
import { createApp, type AppDeps } from "../src/app.ts";
import { RateLimiter } from "../src/core/rate-limiter.ts";
import { silentLogger } from "../src/core/testing.ts";
import type { Counters, Insights } from "../src/routes/insights.ts";

// The embed and dashboard routes on the bare app (app.http.request), with
// fake capabilities: the contract Workers has to meet too. The peer address
// comes from the request's env, as a runtime would give it.

const LOCAL = { peer: "127.0.0.1" };
const REMOTE = { peer: "203.0.113.9" };

const MARKUP = `/<img src=x onerror="alert(1)"><b>&amp;`;
const TOKEN = "dashboard-token-0123456789";

function setup(embed: { corsOrigins?: AppDeps["corsOrigins"]; adminToken?: string } = {}) {
  const totals = new Map<string, number>([["/", 1234], [MARKUP, 7], ["/blog/a", 5]]);
  const counters: Counters = {
    snapshot: async (key) => ({ key, total: totals.get(key) ?? 0, online: 0, visitors: key === "/" ? 321 : 0, bots: 0 }),
  };
  const calls: string[] = [];
  const insights: Insights = {
    top: async (limit) => (calls.push(`top ${limit}`), [{ key: "/", total: 1234, online: 2 }]),
    history: async (key, minutes) => (calls.push(`history ${key} ${minutes}`), [{ minute: 60_000, visits: 3 }]),
    site: async (prefix) => (calls.push(`site ${prefix}`), { prefix, total: 1246, keys: 3, online: 2, settleMs: 0 }),
    daily: async (key, from) => (calls.push(`daily ${key} ${from}`), [{ day: from, visits: 5, visitors: 3, bots: 1 }]),
  };
  const limiter = new RateLimiter({ burst: 1_000_000, perSec: 1_000_000 });
  const { http } = createApp({
    counters,
    insights,
    readiness: async () => ({ ready: true }),
    log: silentLogger,
    limits: { limiter, allowedOrigins: "*", adminToken: embed.adminToken, now: () => Date.now() },
    peerAddress: (c) => (c.env as { peer?: string } | undefined)?.peer,
    corsOrigins: embed.corsOrigins ?? "*",
  });
  const app = { request: (path: string, init: RequestInit = {}, env: { peer: string } = LOCAL) => http.request(path, init, env) };
  return { app, calls };
}

describe("CORS", () => {
  it("lets any origin read the public API by default, and never the dashboard's data", async () => {
    const { app } = setup();
    for (const path of ["/api/counters/%2F", "/api/counters?key=/", "/api/site", "/badge/%2F.svg"]) {
      const res = await app.request(path, { headers: { Origin: "https://blog.example" } });
      expect(res.status, path).toBe(200);
      expect(res.headers.get("access-control-allow-origin"), path).toBe("*");
    }
    for (const path of ["/api/top", "/api/history?key=/"]) {
      const res = await app.request(path, { headers: { Origin: "https://blog.example" } });
      expect(res.headers.get("access-control-allow-origin"), path).toBeNull();
    }
  });

  it("with CORS_ORIGINS, answers listed origins only", async () => {
    const { app } = setup({ corsOrigins: ["https://blog.example"] });
    const ok = await app.request("/api/counters/%2F", { headers: { Origin: "https://blog.example" } });
    expect(ok.headers.get("access-control-allow-origin")).toBe("https://blog.example");
    expect(ok.headers.get("vary")).toMatch(/origin/i);
    const no = await app.request("/api/counters/%2F", { headers: { Origin: "https://evil.example" } });
    expect(no.status).toBe(200); // the data is public; the browser just won't hand it to that page
    expect(no.headers.get("access-control-allow-origin")).toBeNull();
    const pre = await app.request("/api/site", {
      method: "OPTIONS",
      headers: { Origin: "https://blog.example", "Access-Control-Request-Method": "GET" },
    });
    expect(pre.status).toBe(204);
    expect(pre.headers.get("access-control-allow-methods")).toBe("GET,HEAD,OPTIONS");
  });
});

describe("GET /badge/<key>.svg", () => {
  it("is an SVG with the total, short-lived cache headers and the key as text", async () => {
    const { app } = setup();
    const res = await app.request(`/badge/${encodeURIComponent(MARKUP)}.svg`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("image/svg+xml; charset=utf-8");
    expect(res.headers.get("cache-control")).toBe("public, max-age=30");
    expect(res.headers.get("content-security-policy")).toContain("default-src 'none'");
    const svg = await res.text();
    expect(svg).toContain(">7</text>");
    expect(svg).toContain("&lt;img src=x onerror=&quot;alert(1)&quot;&gt;&lt;b&gt;&amp;amp;");
    expect(svg).not.toContain("<img");
    expect(svg).not.toContain("<b>");
  });

  it("groups digits, shows 0 for an unknown key, refuses a bad key", async () => {
    const { app } = setup();
    expect(await (await app.request("/badge/%2F.svg")).text()).toContain(">1,234</text>");
    expect(await (await app.request("/badge/never-seen.svg")).text()).toContain(">0</text>");
    const bad = await app.request(`/badge/${"x".repeat(300)}.svg`);
    expect(bad.status).toBe(400);
  });
});

describe("GET /api/site", () => {
  it("sums over a prefix, every key by default", async () => {
    const { app, calls } = setup();
    expect(await (await app.request("/api/site")).json()).toEqual({ prefix: "", total: 1246, keys: 3, online: 2, settleMs: 0 });
    await app.request("/api/site?prefix=/blog/");
    expect(calls).toEqual(["site ", "site /blog/"]);
    expect((await app.request("/api/site?prefix=%01")).status).toBe(400);
  });
});

describe("dashboard data", () => {
  it("without ADMIN_TOKEN, is open to this machine only (a loopback peer no proxy speaks for)", async () => {
    const { app, calls } = setup();
    for (const path of ["/api/top", "/api/history?key=/", "/api/webhooks"]) {
      const remote = await app.request(path, {}, REMOTE);
      expect(remote.status, path).toBe(403);
      expect(await remote.json(), path).toMatchObject({ error: "admin_token_required" });
      const proxied = await app.request(path, { headers: { "X-Forwarded-For": "203.0.113.9" } }, LOCAL);
      expect(proxied.status, path).toBe(403);
    }
    expect(calls).toEqual([]);
  });

  it("is readable from this machine without ADMIN_TOKEN", async () => {
    const { app, calls } = setup();
    const top = await app.request("/api/top?limit=5");
    expect(top.status).toBe(200);
    expect(top.headers.get("cache-control")).toBe("no-store");
    expect(await top.json()).toEqual({ keys: [{ key: "/", total: 1234, online: 2 }] });
    const hist = await app.request(`/api/history?key=${encodeURIComponent(MARKUP)}&minutes=60`);
    expect(await hist.json()).toMatchObject({ key: MARKUP, minutes: 60, points: [{ minute: 60_000, visits: 3 }] });
    expect(calls).toEqual(["top 5", `history ${MARKUP} 60`]);
  });

  it("wants the bearer token when ADMIN_TOKEN is set", async () => {
    const { app, calls } = setup({ adminToken: TOKEN });
    for (const auth of [undefined, "Bearer wrong-token-0123456789", `Bearer ${TOKEN}x`]) {
      const res = await app.request("/api/top", { headers: auth ? { Authorization: auth } : {} });
      expect(res.status, String(auth)).toBe(401);
      expect(res.headers.get("www-authenticate")).toMatch(/^Bearer/);
      expect(await res.json()).toMatchObject({ error: "unauthorized" });
    }
    // Another scheme is a malformed request for a bearer token (RFC 6750 §3.1: invalid_request, 400).
    const basic = await app.request("/api/top", { headers: { Authorization: `Basic ${TOKEN}` } });
    expect(basic.status).toBe(400);
    expect(basic.headers.get("www-authenticate")).toMatch(/^Bearer error="invalid_request"/);
    expect(calls).toEqual([]);
    const ok = await app.request("/api/history?key=/", { headers: { Authorization: `Bearer ${TOKEN}` } });
    expect(ok.status).toBe(200);
  });

  it("bounds limit and minutes: out of range is a 400 that says the range, never a silent clamp", async () => {
    const { app, calls } = setup();
    for (const [path, message] of [
      ["/api/top?limit=0", "limit: must be between 1 and 100, got 0"],
      ["/api/top?limit=abc", 'limit: expected a whole number, got "abc"'],
      ["/api/top?limit=100000", "limit: must be between 1 and 100, got 100000"],
      ["/api/history?key=/&minutes=-5", 'minutes: expected a whole number, got "-5"'],
      ["/api/history?key=/&minutes=99999", "minutes: must be between 1 and 10080, got 99999"],
    ]) {
      const res = await app.request(path!);
      expect(res.status, path).toBe(400);
      expect(await res.json(), path).toEqual({ error: "bad_request", message });
    }
    await app.request("/api/top?limit=100");
    await app.request("/api/history?key=/&minutes=10080");
    await app.request("/api/history");
    expect(calls).toEqual(["top 100", "history / 10080", "history / 180"]);
  });
});

describe("GET /api/daily", () => {
  it("answers one entry per day up to today, zeros where there is nothing, readable by any origin", async () => {
    const { app, calls } = setup();
    const res = await app.request("/api/daily?key=/&days=3", { headers: { Origin: "https://blog.example" } });
    expect(res.status).toBe(200);
    expect(res.headers.get("access-control-allow-origin")).toBe("*");
    const body = (await res.json()) as { key: string; days: Array<{ day: string }> };
    const day = (n: number) => new Date(Date.now() - n * 86_400_000).toISOString().slice(0, 10);
    expect(body).toEqual({
      key: "/",
      days: [
        { day: day(2), visits: 5, visitors: 3, bots: 1 },
        { day: day(1), visits: 0, visitors: 0, bots: 0 },
        { day: day(0), visits: 0, visitors: 0, bots: 0 },
      ],
    });
    expect(calls).toEqual([`daily / ${day(2)}`]);
  });

  it("without a key is the whole server's (key null), 30 days by default", async () => {
    const { app } = setup();
    const body = (await (await app.request("/api/daily")).json()) as { key: null; days: unknown[] };
    expect(body.key).toBeNull();
    expect(body.days).toHaveLength(30);
  });

  it("refuses days out of 1..365 and a bad key with a 400 that says why", async () => {
    const { app, calls } = setup();
    for (const days of ["0", "366", "-1", "1.5", "x", ""]) {
      const res = await app.request(`/api/daily?days=${days}`);
      expect(res.status).toBe(400);
      expect(((await res.json()) as { message: string }).message).toMatch(/days must be a whole number from 1 to 365/);
    }
    const bad = await app.request("/api/daily?key=%ZZ");
    expect(bad.status).toBe(400);
    expect((await app.request(`/api/daily?key=${"x".repeat(300)}`)).status).toBe(400);
    expect(calls).toEqual([]);
  });
});

describe("visitors on the public API", () => {
  it("/api/counters carries today's visitors and bots; the badge shows visitors with ?metric=visitors", async () => {
    const { app } = setup();
    expect(await (await app.request("/api/counters/%2F")).json()).toEqual({ key: "/", total: 1234, online: 0, visitors: 321, bots: 0 });
    const svg = await (await app.request("/badge/%2F.svg?metric=visitors")).text();
    expect(svg).toContain('data-total="321"');
    expect(svg).toContain("visitors today");
    expect(await (await app.request("/badge/%2F.svg")).text()).toContain('data-total="1234"');
  });
});
