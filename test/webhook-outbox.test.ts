import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { postgresAvailable, TEST_DATABASE_URL, uniqueKey } from "./helpers/env.ts";
import { withSql } from "./helpers/postgres-control.ts";
import { startReceiver, type Receiver } from "./helpers/receiver.ts";
import { startServer, type RunningServer } from "./helpers/server.ts";
import { TestSocket } from "./helpers/ws.ts";

// Events of a rule no running instance has (written by an instance since
// redeployed with other WEBHOOK_RULES) stay pending: shown on the dashboard,
// never claimed, and never in the way of the instance's own events, which
// its worker picks up as soon as its increment writes them (however long its
// idle polling has backed off). The claim can find an instance's own events
// by rule through an index (migration 0002), not by walking every pending one.

const pgUp = await postgresAvailable();

describe.skipIf(!pgUp)("webhook outbox with events of a rule nobody runs", () => {
  const orphanRule = JSON.stringify({ key: uniqueKey("gone"), every: 1, url: "https://gone.example/hook" });
  const orphanId = randomUUID();
  let rx: Receiver;
  let s: RunningServer;

  beforeAll(async () => {
    rx = await startReceiver();
    s = await startServer({
      env: { DATABASE_URL: TEST_DATABASE_URL, WEBHOOK_RULES: JSON.stringify([{ prefix: "/t/outbox-mine/", every: 1, url: rx.url }]) },
    });
    // As an instance with another rule would have written it, due long ago.
    await withSql(
      (sql) => sql`insert into webhook_outbox (id, dedupe, rule_id, key, kind, value, total, due_at)
        values (${orphanId}, ${`test:${orphanId}`}, ${orphanRule}, '/gone', 'milestone', 1, 1, now() - interval '1 hour')`,
    );
  });
  afterAll(async () => {
    await s?.stop();
    await rx?.close();
    await withSql((sql) => sql`delete from webhook_outbox where id = ${orphanId}`);
  });

  it("delivers the instance's own events at once, leaves the other rule's pending and counts it on the dashboard", async () => {
    // Idle long enough that the worker's polling has backed off to its longest wait.
    await new Promise((r) => setTimeout(r, 5000));
    const key = uniqueKey("outbox-mine");
    const { sock } = await TestSocket.join(s.wsUrl(key));
    await expect.poll(() => rx.deliveries.length, { timeout: 10_000 }).toBe(1);
    expect(rx.deliveries[0]!.body).toMatchObject({ type: "milestone", key, milestone: 1 });
    await sock.close();

    const [orphan] = await withSql((sql) => sql`select status, attempts from webhook_outbox where id = ${orphanId}`);
    expect(orphan).toEqual({ status: "pending", attempts: 0 });
    const summary = (await (await fetch(`${s.url}/api/webhooks`)).json()) as { enabled: boolean; pending: number };
    expect(summary.enabled).toBe(true);
    expect(summary.pending).toBeGreaterThanOrEqual(1);
  });

  it("can claim by rule through an index, without walking other rules' pending events", async () => {
    const plan = await withSql((sql) =>
      sql.begin(async (tx) => {
        await tx`set local enable_seqscan = off`;
        return tx`explain select id from webhook_outbox
          where status = 'pending' and due_at <= now() and (locked_until is null or locked_until < now())
            and rule_id in (${orphanRule}, 'another rule')
          order by due_at limit 4 for update skip locked`;
      }),
    );
    const text = plan.map((row) => String(Object.values(row)[0])).join("\n");
    expect(text).toMatch(/webhook_outbox_claim/);
    expect(text).not.toMatch(/webhook_outbox_settled|webhook_outbox_due/);
  });
});
