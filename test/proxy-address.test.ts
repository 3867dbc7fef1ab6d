import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { uniqueKey } from "./helpers/env.ts";
import { anyStoreEnv } from "./helpers/store-env.ts";
import { Op, RawConn, upgradeRequest } from "./helpers/raw-ws.ts";
import { startServer, type RunningServer, type RuntimeName } from "./helpers/server.ts";

// Issue "hostile clients, hostile networks": who a client is, behind a chain
// of proxies and on IPv6. With TRUST_PROXY_HEADER=x-forwarded-for and
// TRUST_PROXY_HOPS=2 (a CDN, then a load balancer: each appends the address
// it saw), the client is the second entry from the right; an IPv6 client is
// its /64 (IPV6_PREFIX), so one subscriber cannot take a fresh rate-limit
// bucket or socket allowance per address. Every runtime, Workers included
// (there the peer is CF-Connecting-IP). The unit tests are src/core/address.test.ts.

const BURST = 5;
const SOCKETS_PER_ADDRESS = 3;

/** GET /api/counters/<key> (rate-limited) with an X-Forwarded-For chain; the status. */
async function apiStatus(s: RunningServer, chain: string | null): Promise<number> {
  const res = await fetch(`${s.url}/api/counters/${encodeURIComponent("/proxy-address")}`, { headers: chain === null ? {} : { "x-forwarded-for": chain } });
  await res.body?.cancel();
  return res.status;
}

/** A WebSocket handshake with an X-Forwarded-For chain: "hello" once the visit counts, else the HTTP status. */
async function handshake(s: RunningServer, key: string, chain: string): Promise<{ outcome: string; conn: RawConn }> {
  const conn = await RawConn.open(s.port);
  await conn.write(upgradeRequest(`/ws?key=${encodeURIComponent(key)}`, { headers: { "X-Forwarded-For": chain } }));
  await conn.until(() => (conn.head !== null && (conn.head.status !== 101 || conn.frames.some((f) => f.opcode === Op.text))) || conn.ended !== null, 10_000);
  const head = conn.head;
  return { outcome: head?.status === 101 ? "hello" : String(head?.status ?? conn.ended), conn };
}

describe.each(["node", "bun", "deno", "worker"] as RuntimeName[])("proxy chains and IPv6 prefixes on %s", (runtime) => {
  let server: RunningServer;
  const open: RawConn[] = [];
  beforeAll(async () => {
    server = await startServer({
      runtime,
      timeoutMs: 90_000,
      env: {
        ...anyStoreEnv(runtime),
        TRUST_PROXY_HEADER: "x-forwarded-for",
        TRUST_PROXY_HOPS: "2",
        IPV6_PREFIX: "64",
        RATE_LIMIT_BURST: String(BURST),
        // No refill: a bucket's burst is all it gets during the test.
        RATE_LIMIT_PER_SEC: "0",
        MAX_SOCKETS_PER_IP: String(SOCKETS_PER_ADDRESS),
        // Behind a proxy every connection comes from the proxy: Node's per-address connection cap is off.
        MAX_CONNECTIONS_PER_IP: "5",
      },
    });
  });
  afterAll(async () => {
    for (const c of open) c.destroy();
    await server?.stop();
  });

  it(`clients anywhere in one /64 share one rate-limit bucket (${BURST} requests, then 429); another /64 has its own`, async () => {
    const statuses = [];
    for (let i = 1; i <= BURST + 2; i++) statuses.push(await apiStatus(server, `198.51.100.${i}, 2001:db8:a:1:${i}::${i}, 10.0.0.1`));
    expect(statuses).toEqual([...Array<number>(BURST).fill(200), 429, 429]);
    expect(await apiStatus(server, "198.51.100.1, 2001:db8:a:2::1, 10.0.0.1")).toBe(200);
    // Written another way, the first /64 is still the same client.
    expect(await apiStatus(server, "2001:0DB8:000A:0001:ffff:ffff:ffff:ffff, 10.0.0.1")).toBe(429);
  });

  it("with TRUST_PROXY_HOPS=2 the second entry from the right is the client: a changing load balancer does not make a new client, a changing client does", async () => {
    const statuses = [];
    for (let i = 1; i <= BURST + 1; i++) statuses.push(await apiStatus(server, `6.6.6.${i}, 203.0.113.7, 10.0.0.${i}`));
    expect(statuses).toEqual([...Array<number>(BURST).fill(200), 429]);
    for (let i = 1; i <= BURST + 1; i++) expect(await apiStatus(server, `203.0.113.${20 + i}, 10.0.0.1`)).toBe(200);
  });

  it("a chain shorter than the hops, or garbage where the client should be, falls back to the peer (one shared bucket)", async () => {
    const statuses = [];
    // Each of these names a different "client", but none is trustworthy: they all count against the peer.
    const chains = ["203.0.113.51", "garbage, 10.0.0.1", "203.0.113.52", "unknown, 10.0.0.2", "203.0.113.53", ", 10.0.0.3", "203.0.113.54"];
    for (const chain of chains) statuses.push(await apiStatus(server, chain));
    expect(statuses).toEqual([...Array<number>(BURST).fill(200), 429, 429]);
  });

  it(`clients in one /64 share one socket allowance (${SOCKETS_PER_ADDRESS}, then 503); another /64 is not refused`, async () => {
    const key = uniqueKey(`proxy-${runtime}`);
    const outcomes = [];
    for (let i = 1; i <= SOCKETS_PER_ADDRESS + 1; i++) {
      const h = await handshake(server, key, `2001:db8:b:1::${i}, 10.0.0.${i}`);
      open.push(h.conn);
      outcomes.push(h.outcome);
    }
    expect(outcomes).toEqual([...Array<string>(SOCKETS_PER_ADDRESS).fill("hello"), "503"]);
    const other = await handshake(server, key, "2001:db8:b:2::1, 10.0.0.1");
    open.push(other.conn);
    expect(other.outcome).toBe("hello");
  });

  if (runtime === "node") {
    it("behind a trusted proxy header Node's per-address connection cap is off: the proxy's connections are not throttled", async () => {
      const held: RawConn[] = [];
      try {
        for (let i = 0; i < 10; i++) {
          const c = await RawConn.open(server.port, 5000, "127.0.0.7");
          await c.write("GET /healthz HTTP/1.1\r\nHost: x\r\n");
          held.push(c);
        }
        const c = await RawConn.open(server.port, 5000, "127.0.0.7");
        held.push(c);
        await c.write("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        await c.until(() => c.head !== null || c.ended !== null, 5000);
        expect(c.head?.status).toBe(200);
        expect(held.slice(0, 10).filter((h) => h.ended !== null)).toHaveLength(0);
      } finally {
        for (const h of held) h.destroy();
      }
    });
  }
});
