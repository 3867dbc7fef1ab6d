import { afterEach, describe, expect, it } from "vitest";
import { postgresAvailable, TEST_DATABASE_URL, uniqueKey } from "./helpers/env.ts";
import { startReceiver, type Receiver } from "./helpers/receiver.ts";
import { freshDataDir, startServer, type RunningServer } from "./helpers/server.ts";
import { sleep, TestSocket } from "./helpers/ws.ts";

// Milestone and online webhooks through the outbox (issue 7), against real
// receiving HTTP servers on loopback.

const pgUp = await postgresAvailable();
const SECRET = "a-webhook-secret";
const cleanup: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  while (cleanup.length) await cleanup.pop()!().catch(() => {});
});

async function receiver(secret?: string): Promise<Receiver> {
  const r = await startReceiver(secret);
  cleanup.push(() => r.close());
  return r;
}

async function server(rules: unknown[], env: Record<string, string> = {}, dataDir?: string): Promise<RunningServer> {
  const s = await startServer({
    env: { DATABASE_URL: TEST_DATABASE_URL, WEBHOOK_RULES: JSON.stringify(rules), WEBHOOK_RETRY_BASE_MS: "100", ...env },
    dataDir,
  });
  cleanup.push(() => s.stop());
  return s;
}

async function visits(s: RunningServer, key: string, n: number): Promise<void> {
  const joined = await Promise.all(Array.from({ length: n }, () => TestSocket.join(s.wsUrl(key))));
  await Promise.all(joined.map((j) => j.sock.close()));
}

describe.skipIf(!pgUp)("webhooks", () => {
  it("a burst that crosses a milestone yields exactly one signed delivery", async () => {
    const rx = await receiver(SECRET);
    const key = uniqueKey("milestone");
    const s = await server([{ key, milestones: [10], url: `${rx.url}/hook`, secret: SECRET }]);
    await visits(s, key, 25);
    await expect.poll(() => rx.deliveries.length, { timeout: 10_000 }).toBe(1);
    await sleep(1000);
    expect(rx.deliveries).toHaveLength(1);
    const d = rx.deliveries[0]!;
    expect(d.signatureValid).toBe(true);
    expect(d.body).toMatchObject({ type: "milestone", key, milestone: 10 });
    expect(d.body.total).toBeGreaterThanOrEqual(10);
    expect(d.body.id).toMatch(/^[0-9a-f-]{36}$/);
  });

  it("every N fires once per multiple, across two instances sharing the database", async () => {
    const rx = await receiver();
    const key = uniqueKey("every");
    const rules = [{ key, every: 5, url: rx.url }];
    const [a, b] = await Promise.all([server(rules), server(rules)]);
    await Promise.all([visits(a, key, 9), visits(b, key, 8)]);
    await expect.poll(() => rx.deliveries.length, { timeout: 10_000 }).toBe(3);
    await sleep(800);
    expect(rx.deliveries.map((d) => d.body.milestone).sort()).toEqual([10, 15, 5]);
  });

  it("an instance started later with other rules neither stops this one's rules nor takes its events", async () => {
    const rx = await receiver();
    const other = await receiver();
    const key = uniqueKey("mine");
    const a = await server([{ key, milestones: [1, 2, 3], url: rx.url }]);
    // Started after a, with a rule of its own (its worker polls the same outbox) and with none at all.
    const b = await server([{ key: uniqueKey("theirs"), milestones: [1], url: other.url }]);
    await server([]);
    await visits(a, key, 3);
    await expect.poll(() => rx.deliveries.length, { timeout: 10_000 }).toBe(3);
    expect(rx.deliveries.map((d) => d.body.milestone).sort()).toEqual([1, 2, 3]);
    const dead = async (s: RunningServer) => (await (await fetch(`${s.url}/metrics`)).text()).match(/^headcount_webhooks_dead_total (\d+)/m)?.[1];
    expect(await dead(a)).toBe("0");
    expect(await dead(b)).toBe("0");
    expect(other.deliveries).toHaveLength(0);
  });

  it("a receiver that fails twice gets the event on the third try", async () => {
    const rx = await receiver();
    rx.respond = (_req, res, attempt) => res.writeHead(attempt < 3 ? 500 : 200).end();
    const key = uniqueKey("retry");
    const s = await server([{ key, milestones: [1], url: rx.url }]);
    await visits(s, key, 1);
    await expect.poll(() => rx.deliveries.length, { timeout: 15_000 }).toBe(3);
    expect(new Set(rx.deliveries.map((d) => d.id)).size).toBe(1);
    await sleep(800);
    expect(rx.deliveries).toHaveLength(3);
  });

  it("gives up after WEBHOOK_MAX_ATTEMPTS and shows the dead event in metrics", async () => {
    const rx = await receiver();
    rx.respond = (_req, res) => res.writeHead(503).end();
    const key = uniqueKey("dead");
    const s = await server([{ key, milestones: [1], url: rx.url }], { WEBHOOK_MAX_ATTEMPTS: "2" });
    await visits(s, key, 1);
    await expect
      .poll(async () => (await (await fetch(`${s.url}/metrics`)).text()).match(/^headcount_webhooks_dead_total (\d+)/m)?.[1], {
        timeout: 15_000,
      })
      .toBe("1");
    expect(rx.deliveries).toHaveLength(2);
    // The dashboard's endpoint shows it too.
    const hooks = (await (await fetch(`${s.url}/api/webhooks`)).json()) as { dead: number; recentDead: Array<{ key: string; attempts: number; lastError: string }> };
    expect(hooks.dead).toBeGreaterThanOrEqual(1);
    expect(hooks.recentDead.find((d) => d.key === key)).toMatchObject({ attempts: 2, lastError: "HTTP 503" });
  });

  it("a slow receiver does not delay another origin, and never gets more than the cap of connections", async () => {
    const slow = await receiver();
    const fast = await receiver();
    slow.respond = (_req, res) => void setTimeout(() => res.writeHead(200).end(), 1500);
    const slowKey = uniqueKey("slow");
    const fastKey = uniqueKey("fast");
    const s = await server(
      [
        { key: slowKey, every: 1, url: slow.url },
        { key: fastKey, milestones: [1], url: fast.url },
      ],
      { WEBHOOK_MAX_CONNECTIONS_PER_ORIGIN: "2", WEBHOOK_CONCURRENCY: "4" },
    );
    await visits(s, slowKey, 12); // twelve events for the slow origin: six rounds of 1.5 s at two at a time
    await sleep(300);
    await visits(s, fastKey, 1);
    await expect.poll(() => fast.deliveries.length, { timeout: 5000 }).toBe(1);
    // The fast origin was served while the slow one still had most of its backlog.
    const fastAt = fast.deliveries[0]!.at;
    expect(slow.deliveries.filter((d) => d.at <= fastAt).length).toBeLessThanOrEqual(4);
    await expect.poll(() => slow.deliveries.length, { timeout: 20_000 }).toBe(12);
    expect(slow.maxConnections).toBeLessThanOrEqual(2);
  });

  it("a server killed mid-delivery delivers the event after restart; the receiver sees it once after dedupe", async () => {
    const rx = await receiver();
    let hold = true;
    rx.respond = (_req, res) => {
      if (hold) return; // never answers: the delivery is in flight when the server dies
      res.writeHead(200).end();
    };
    const key = uniqueKey("crash");
    const rules = [{ key, milestones: [1], url: rx.url }];
    const env = { WEBHOOK_TIMEOUT_MS: "1000" };
    const first = await server(rules, env);
    await visits(first, key, 1);
    await expect.poll(() => rx.deliveries.length, { timeout: 5000 }).toBe(1);
    await first.stop("SIGKILL");
    hold = false;
    await server(rules, env); // the lock (timeout + 5 s) expires, then it is claimed again
    await expect.poll(() => rx.deliveries.length, { timeout: 20_000 }).toBeGreaterThanOrEqual(2);
    await sleep(1000);
    expect(rx.unique().size).toBe(1);
    expect([...rx.unique().values()][0]!.body).toMatchObject({ key, milestone: 1 });
  });

  it("online thresholds fire once per crossing, with hysteresis", async () => {
    const rx = await receiver();
    const key = uniqueKey("online");
    const s = await server([{ key, online: 3, hysteresis: 1, url: rx.url }]);
    const socks = [];
    for (let i = 0; i < 3; i++) socks.push(await TestSocket.join(s.wsUrl(key)));
    await expect.poll(() => rx.deliveries.length, { timeout: 5000 }).toBe(1);
    expect(rx.deliveries[0]!.body).toMatchObject({ type: "online", key, threshold: 3 });
    // Hovering at the line (2 → 3 → 2 → 3) does not fire again.
    for (let i = 0; i < 3; i++) {
      await socks.pop()!.sock.close();
      await sleep(150);
      socks.push(await TestSocket.join(s.wsUrl(key)));
      await sleep(150);
    }
    await sleep(500);
    expect(rx.deliveries).toHaveLength(1);
    // Below threshold - hysteresis (1 online) re-arms; back to 3 fires again.
    await socks.pop()!.sock.close();
    await socks.pop()!.sock.close();
    await sleep(400);
    socks.push(await TestSocket.join(s.wsUrl(key)), await TestSocket.join(s.wsUrl(key)));
    await expect.poll(() => rx.deliveries.length, { timeout: 5000 }).toBe(2);
    for (const j of socks) await j.sock.close();
  });

  it("works on the embedded store too", async () => {
    const rx = await receiver();
    const key = uniqueKey("embedded");
    const s = await server([{ key, milestones: [2], url: rx.url }], { DATABASE_URL: "" }, freshDataDir());
    await visits(s, key, 3);
    await expect.poll(() => rx.deliveries.length, { timeout: 10_000 }).toBe(1);
    expect(rx.deliveries[0]!.body).toMatchObject({ key, milestone: 2 });
  });

  it("a bad WEBHOOK_RULES stops start-up with a message naming it", async () => {
    const { runToExit } = await import("./helpers/server.ts");
    const run = await runToExit({ env: { WEBHOOK_RULES: '[{"key":"/x","url":"ftp://nope"}]', DATABASE_URL: TEST_DATABASE_URL } });
    expect(run.code).toBe(2);
    expect(run.output).toMatch(/WEBHOOK_RULES: rule 0/);
  });
});
