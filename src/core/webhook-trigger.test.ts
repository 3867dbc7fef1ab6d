import { describe, expect, it } from "vitest";
import type { Outbox } from "./ports.ts";
import { settle, silentLogger } from "./testing.ts";
import { OnlineTrigger } from "./webhook-trigger.ts";
import { parseWebhookRules } from "./webhook-rules.ts";

// The online trigger against an outbox that keeps the armed flag as the
// database does (one event per crossing, whoever asks), counting statements.

class ArmedOutbox implements Outbox {
  readonly disarmed = new Set<string>();
  readonly events: Array<{ key: string; online: number }> = [];
  fires = 0;
  rearms = 0;
  async fireOnline(ruleId: string, key: string, _threshold: number, online: number): Promise<boolean> {
    this.fires++;
    const id = `${ruleId}\n${key}`;
    if (this.disarmed.has(id)) return false;
    this.disarmed.add(id);
    this.events.push({ key, online });
    return true;
  }
  async rearm(ruleId: string, key: string): Promise<void> {
    this.rearms++;
    this.disarmed.delete(`${ruleId}\n${key}`);
  }
  async claim() {
    return [];
  }
  async delivered(): Promise<void> {}
  async failed(): Promise<void> {}
  async summary() {
    return { pending: 0, delivered: 0, dead: 0 };
  }
  async recentDead() {
    return [];
  }
}

const rules = parseWebhookRules(JSON.stringify([{ prefix: "/", online: 10, hysteresis: 2, url: "http://hooks.test/x" }]));

describe("OnlineTrigger", () => {
  it("fires once per crossing, re-arms below the hysteresis line, and asks the database once per crossing", async () => {
    const outbox = new ArmedOutbox();
    let woken = 0;
    const t = new OnlineTrigger(rules, outbox, silentLogger, { onFired: () => woken++ });
    for (const n of [1, 5, 10, 11, 12, 9, 8, 10, 12, 7, 9, 10]) {
      t.observe("/k", n, 100);
      await settle();
    }
    expect(outbox.events.map((e) => e.online)).toEqual([10, 10]); // 7 re-armed, 10 fired again; 8 was inside the band
    expect(outbox.fires).toBe(2);
    expect(outbox.rearms).toBe(2); // at 1 (first sight, below) and at 7
    expect(woken).toBe(2);
  });

  it("remembers at most `capacity` keys however many strangers make up", async () => {
    const outbox = new ArmedOutbox();
    const t = new OnlineTrigger(rules, outbox, silentLogger, { capacity: 100 });
    for (let i = 0; i < 10_000; i++) t.observe(`/made-up/${i}`, 1 + (i % 20), 1);
    await settle();
    expect(t.size).toBe(100);
    // Keys seen once each: one statement each, as before the bound.
    expect(outbox.fires + outbox.rearms).toBe(10_000 - 10_000 / 20 * 2); // online 9 and 8 are inside the band
  });

  it("a forgotten key costs at most one extra statement, and never a lost or duplicate event", async () => {
    const outbox = new ArmedOutbox();
    const t = new OnlineTrigger(rules, outbox, silentLogger, { capacity: 10 });
    t.observe("/hot", 15, 1); // fires
    await settle();
    for (let i = 0; i < 50; i++) t.observe(`/other/${i}`, 1, 1); // pushes /hot out
    await settle();
    const before = outbox.fires;
    for (let i = 0; i < 5; i++) t.observe("/hot", 15 + i, 1); // still above: one extra ask, no event
    await settle();
    expect(outbox.fires - before).toBe(1);
    expect(outbox.events).toHaveLength(1);

    for (let i = 0; i < 50; i++) t.observe(`/more/${i}`, 1, 1); // forgotten again
    t.observe("/hot", 3, 1); // drops below the line: re-armed
    await settle();
    for (let i = 0; i < 50; i++) t.observe(`/again/${i}`, 1, 1); // and forgotten while low
    t.observe("/hot", 2, 1); // one extra re-arm, harmless
    t.observe("/hot", 10, 1); // the next crossing fires
    await settle();
    expect(outbox.events.filter((e) => e.key === "/hot")).toHaveLength(2);
  });

  it("a recently updated key stays while quieter ones are dropped", async () => {
    const outbox = new ArmedOutbox();
    const t = new OnlineTrigger(rules, outbox, silentLogger, { capacity: 10 });
    t.observe("/busy", 12, 1);
    await settle();
    for (let i = 0; i < 100; i++) {
      t.observe(`/quiet/${i}`, 1, 1);
      t.observe("/busy", 12, 1); // still high: no statement, but recent
    }
    await settle();
    expect(outbox.fires).toBe(1);
  });

  it("a failed statement is tried again on the next update", async () => {
    const outbox = new ArmedOutbox();
    const t = new OnlineTrigger(rules, outbox, silentLogger);
    const fire = outbox.fireOnline.bind(outbox);
    let fail = true;
    outbox.fireOnline = (...args) => (fail ? ((fail = false), Promise.reject(new Error("db down"))) : fire(...args));
    t.observe("/k", 10, 1);
    await settle();
    expect(outbox.events).toHaveLength(0);
    t.observe("/k", 10, 1);
    await settle();
    expect(outbox.events).toHaveLength(1);
  });
});
