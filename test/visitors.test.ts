import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BROWSER_UA, uniqueKey } from "./helpers/env.ts";
import { anyStoreEnv } from "./helpers/store-env.ts";
import { startServer, type RunningServer, type RuntimeName } from "./helpers/server.ts";
import { TestSocket } from "./helpers/ws.ts";

// Who a visitor is (issue 13), on every runtime, behind a trusted proxy
// (TRUST_PROXY_HEADER=x-forwarded-for): the address key (IPv6 by its /64,
// as for the rate limits) and the first 512 bytes of the user agent. The
// bad input the issue names: an 8 KiB user agent (hashed by its first 512
// bytes), none at all (a bot), a forwarded header that is no address (the
// peer's address is used, as for the limits), and a page that reports
// navigator.webdriver (wd=1: a bot). None of them fails the visit.

async function numbers(s: RunningServer, key: string): Promise<{ total: number; visitors: number; bots: number }> {
  return (await (await fetch(`${s.url}/api/counters/${encodeURIComponent(key)}`)).json()) as { total: number; visitors: number; bots: number };
}

describe.each(["node", "bun", "deno", "worker"] as RuntimeName[])("visitors on %s", (runtime) => {
  let server: RunningServer;
  beforeAll(async () => {
    server = await startServer({ runtime, timeoutMs: 90_000, env: { ...anyStoreEnv(runtime), TRUST_PROXY_HEADER: "x-forwarded-for", IPV6_PREFIX: "64" } });
  });
  afterAll(async () => {
    await server?.stop();
  });

  it("tells visitors apart by address (IPv6 by /64) and user agent; bad input is defined and never fails the visit", async () => {
    const key = uniqueKey("who");
    const visit = async (headers: Record<string, string>, path = server.wsUrl(key)) => {
      const { sock, hello } = await TestSocket.join(path, 10_000, headers);
      await sock.close();
      return hello;
    };
    // Two addresses, one user agent: two visitors. The same /64 again: the same visitor.
    expect(await visit({ "X-Forwarded-For": "198.51.100.7" })).toMatchObject({ total: 1, visitors: 1 });
    expect(await visit({ "X-Forwarded-For": "198.51.100.8" })).toMatchObject({ total: 2, visitors: 2 });
    expect(await visit({ "X-Forwarded-For": "2001:db8:1:2::1" })).toMatchObject({ total: 3, visitors: 3 });
    expect(await visit({ "X-Forwarded-For": "2001:db8:1:2:ffff::9" })).toMatchObject({ total: 4, visitors: 3 });
    // 8 KiB of user agent: a visitor, known by its first 512 bytes (a different tail is the same visitor).
    const long = `${BROWSER_UA} ${"x".repeat(8192)}`;
    expect(await visit({ "X-Forwarded-For": "198.51.100.9", "User-Agent": long })).toMatchObject({ total: 5, visitors: 4 });
    expect(await visit({ "X-Forwarded-For": "198.51.100.9", "User-Agent": `${long.slice(0, 600)}${"y".repeat(7000)}` })).toMatchObject({
      total: 6,
      visitors: 4,
    });
    // A forwarded header that is no address: the peer's address (the proxy's), like the limits; counted all the same.
    expect(await visit({ "X-Forwarded-For": "not-an-address" })).toMatchObject({ total: 7, visitors: 5 });
    // No user agent, or navigator.webdriver: bots, which watch but count nothing else.
    expect(await visit({ "X-Forwarded-For": "198.51.100.10", "User-Agent": "" })).toMatchObject({ total: 7, visitors: 5, visitor: 0 });
    expect(await visit({ "X-Forwarded-For": "198.51.100.11" }, `${server.wsUrl(key)}&wd=1`)).toMatchObject({ total: 7, visitors: 5, visitor: 0 });
    expect(await numbers(server, key)).toMatchObject({ total: 7, visitors: 5, bots: 2 });
    if (runtime === "worker") return; // /metrics there is the isolate's; the counting happens in the objects
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    const value = (name: string) => Number(new RegExp(`^${name} (\\d+)$`, "m").exec(metrics)?.[1]);
    expect(metrics).toMatch(/# TYPE headcount_visitors_total counter/);
    expect(value("headcount_visitors_total")).toBeGreaterThanOrEqual(5);
    expect(value("headcount_bots_total")).toBeGreaterThanOrEqual(2);
    expect(value("headcount_visits_committed_total")).toBeGreaterThanOrEqual(7);
  });
});
