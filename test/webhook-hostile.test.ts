import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { uniqueKey } from "./helpers/env.ts";
import { anyStoreEnv, pgUp } from "./helpers/store-env.ts";
import { endlessBody, startReceiver, type Receiver } from "./helpers/receiver.ts";
import { startServer, type RunningServer, type RuntimeName } from "./helpers/server.ts";
import { sleep, TestSocket } from "./helpers/ws.ts";

// Issue "hostile clients, hostile networks": a webhook receiver is a stranger
// too. A redirect is never followed (a 307 would re-post the signed event to
// wherever the receiver points, loopback included): it is a failed attempt,
// "HTTP 307". An answer's body is read only up to 4 KiB: a receiver that
// answers 200 with a body that never ends gets its delivery, and the server
// does not hold the body. Every runtime's poster: undici on Node, fetch with
// redirect: "manual" on Bun, Deno and Workers (each returns the 3xx itself,
// not an opaque response).

const ATTEMPTS = 2;
const rss = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1]) / 1024;

async function visit(s: RunningServer, key: string): Promise<void> {
  const { sock } = await TestSocket.join(s.wsUrl(key));
  await sock.close();
}

describe.each(["node", "bun", "deno", "worker"] as RuntimeName[])("hostile webhook receivers on %s", (runtime) => {
  let server: RunningServer;
  let redirector: Receiver;
  let target: Receiver;
  let big: Receiver;
  const bodies: number[] = [];
  const redirectKey = uniqueKey(`redirect-${runtime}`);
  const bigKey = uniqueKey(`big-${runtime}`);

  beforeAll(async () => {
    [redirector, target, big] = await Promise.all([startReceiver(), startReceiver(), startReceiver()]);
    redirector.respond = (_req, res) => res.writeHead(307, { Location: `${target.url}/stolen` }).end();
    big.respond = (_req, res) => void endlessBody(res).then((n) => bodies.push(n));
    server = await startServer({
      runtime,
      timeoutMs: 90_000,
      env: {
        ...anyStoreEnv(runtime),
        WEBHOOK_RULES: JSON.stringify([
          { key: redirectKey, milestones: [1], url: `${redirector.url}/hook` },
          { key: bigKey, milestones: [1], url: `${big.url}/hook` },
        ]),
        WEBHOOK_MAX_ATTEMPTS: String(ATTEMPTS),
        WEBHOOK_RETRY_BASE_MS: "100",
        WEBHOOK_TIMEOUT_MS: "5000",
      },
    });
  });
  afterAll(async () => {
    await server?.stop();
    await Promise.all([redirector, target, big].map((r) => r?.close()));
  });

  it(`a 307 is not followed: each of the ${ATTEMPTS} attempts fails with "HTTP 307" and the second receiver never hears of the event`, async () => {
    await visit(server, redirectKey);
    await expect.poll(() => redirector.deliveries.length, { timeout: 20_000 }).toBe(ATTEMPTS);
    expect(new Set(redirector.deliveries.map((d) => d.id)).size).toBe(1);
    if (runtime !== "worker" || pgUp) {
      // The dashboard's endpoint names the failure (on Workers only with PostgreSQL: each key's object keeps its own outbox).
      await expect
        .poll(async () => {
          const hooks = (await (await fetch(`${server.url}/api/webhooks`)).json()) as { recentDead: Array<{ key: string; attempts: number; lastError: string }> };
          return hooks.recentDead.find((d) => d.key === redirectKey);
        }, { timeout: 10_000 })
        .toMatchObject({ attempts: ATTEMPTS, lastError: "HTTP 307" });
    }
    // A followed redirect would have reached it within the attempt; give the last one a moment anyway.
    await sleep(300);
    expect(target.deliveries).toHaveLength(0);
    expect(redirector.deliveries).toHaveLength(ATTEMPTS);
  });

  it("a 200 whose body never ends is a delivery (no retry), and the server reads only the start of it", async () => {
    const before = runtime === "worker" ? 0 : rss(server.pid);
    await visit(server, bigKey);
    await expect.poll(() => big.deliveries.length, { timeout: 20_000 }).toBe(1);
    // The receiver stops writing once the server has gone away from the body.
    await expect.poll(() => bodies.length, { timeout: 10_000 }).toBe(1);
    const growth = runtime === "worker" ? NaN : rss(server.pid) - before;
    console.log(`${runtime}: the endless body wrote ${(bodies[0]! / 2 ** 20).toFixed(1)} MiB before the server let go; server RSS ${Number.isNaN(growth) ? "not measured" : `+${growth.toFixed(0)} MiB`}`);
    expect(bodies[0]!).toBeLessThan(64 * 2 ** 20);
    if (runtime !== "worker") expect(growth).toBeLessThan(32);
    // No retry (WEBHOOK_RETRY_BASE_MS is 100): the first attempt succeeded.
    await sleep(600);
    expect(big.deliveries).toHaveLength(1);
  });
});
