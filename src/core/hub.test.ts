import { describe, expect, it } from "vitest";
import { Hub, loopFanout, type HubOptions } from "./hub.ts";
import { hubMetrics, Registry } from "./metrics.ts";
import { verifyResumeToken } from "./resume.ts";
import type { Session } from "./room.ts";
import { FakeClock, FakePeer, FakeStore, fakeSigner, settle, silentLogger } from "./testing.ts";

type Msg = Record<string, unknown>;

function setup(initial: Record<string, number> = {}, opts: Partial<HubOptions> = {}) {
  const store = new FakeStore(initial);
  const clock = new FakeClock();
  const signer = fakeSigner();
  const metrics = hubMetrics(new Registry());
  const hub = new Hub(
    { store, fanout: loopFanout, clock, signer, log: silentLogger, metrics },
    { broadcastIntervalMs: 25, commitTimeoutMs: 1000, resumeTtlS: 3600, messageBurst: 10, messagePerSec: 1, ...opts },
  );
  let n = 0;
  /** Opens a socket; closing the fake peer plays the adapter calling session.close(). */
  const join = (key: string, token: string | null = null): { peer: FakePeer; session: Session } => {
    const peer = new FakePeer(`p${++n}`);
    const session = hub.admit(peer, key, token);
    peer.onClose = () => session.close();
    return { peer, session };
  };
  /** Lets commits finish and every due broadcast go out, moving time on by `ms`. */
  const quiet = (ms = 100) => clock.advanceAsync(ms);
  const nowS = () => Math.floor(clock.now() / 1000);
  return { store, clock, signer, hub, join, quiet, nowS, metrics };
}

const counts = (p: FakePeer): Msg[] => p.ofType("count");
const hello = (p: FakePeer): Msg => {
  const h = p.ofType("hello");
  expect(h).toHaveLength(1);
  return h[0]!;
};

describe("Hub: counting and hello", () => {
  it("greets a joiner once its visit commits, with visitor, resume token, total, online and seq", async () => {
    const { join, quiet, signer, nowS, store, metrics } = setup({ "/": 123 });
    const a = join("/");
    expect(a.peer.sent).toEqual([]);
    await settle();
    expect(store.calls).toEqual([{ "/": 1 }]);
    const h = hello(a.peer);
    expect(h).toEqual({
      type: "hello",
      key: "/",
      total: 124,
      online: 1,
      visitors: 0,
      visitor: 124,
      resume: expect.stringMatching(/^124\.\d+\.[0-9a-f]+$/),
      seq: 0,
    });
    expect(a.peer.sent[0]).toBe(h); // hello comes first
    expect(verifyResumeToken(signer, "/", h.resume as string, nowS())).toEqual({ visitor: 124, expiresAt: nowS() + 3600 });

    await quiet();
    expect(counts(a.peer)).toEqual([{ type: "count", key: "/", total: 124, online: 1, visitors: 0, seq: 1 }]);
    expect([metrics.visits.value, metrics.commits.value, metrics.resumes.value]).toEqual([1, 1, 0]);
  });

  it("sends a first joiner nothing before the store resolves", async () => {
    const { store, join, quiet } = setup({ "/": 0 });
    store.hold();
    const a = join("/");
    await quiet(500);
    expect(a.peer.sent).toEqual([]);
    store.commitHeld();
    await settle();
    expect(a.peer.sent[0]).toMatchObject({ type: "hello", total: 1, visitor: 1, online: 1 });
  });

  it("sends a joiner nothing before its commit, even while its room is broadcasting", async () => {
    const { store, join, quiet } = setup({ "/": 10 });
    const a = join("/");
    await quiet();
    a.peer.clear();

    store.hold();
    const b = join("/");
    await quiet(500);
    expect(b.peer.sent).toEqual([]);
    // The watcher already sees someone arrive (online), but not an uncommitted visit.
    expect(counts(a.peer)).toEqual([{ type: "count", key: "/", total: 11, online: 2, visitors: 0, seq: 2 }]);

    store.commitHeld();
    await settle();
    expect(b.peer.sent).toEqual([{ type: "hello", key: "/", total: 12, online: 2, visitors: 0, visitor: 12, resume: expect.any(String), seq: 2 }]);
    await quiet();
    expect(counts(b.peer)).toEqual([{ type: "count", key: "/", total: 12, online: 2, visitors: 0, seq: 3 }]);
    expect(counts(a.peer).at(-1)).toEqual({ type: "count", key: "/", total: 12, online: 2, visitors: 0, seq: 3 });
  });

  it("gives concurrent joiners distinct, contiguous visitor numbers", async () => {
    const { store, join, quiet } = setup({ "/": 7, "/x": 0 });
    store.hold();
    const first = join("/");
    await settle();
    const rest = Array.from({ length: 20 }, (_, i) => join(i % 4 === 0 ? "/x" : "/"));
    await settle();
    store.unhold();
    store.commitHeld();
    await quiet();
    expect(store.calls).toEqual([{ "/": 1 }, { "/": 15, "/x": 5 }]);
    const slash = [first, ...rest.filter((_, i) => i % 4 !== 0)].map((j) => hello(j.peer).visitor);
    const x = rest.filter((_, i) => i % 4 === 0).map((j) => hello(j.peer).visitor);
    expect(slash).toEqual(Array.from({ length: 16 }, (_, i) => 8 + i));
    expect(x).toEqual([1, 2, 3, 4, 5]);
  });

  it("still counts a visit whose socket closed before the commit, without greeting it", async () => {
    const { store, join, quiet, hub } = setup({ "/": 0 });
    const a = join("/");
    await quiet();
    store.hold();
    const b = join("/");
    await settle(); // its increment is in flight
    b.session.close();
    store.commitHeld();
    await quiet();
    expect(b.peer.sent).toEqual([]);
    expect(store.data.get("/")).toBe(2);
    expect(counts(a.peer).at(-1)).toMatchObject({ total: 2, online: 1 });
    expect(hub.room("/")!.online).toBe(1);
  });

  it("refuses a visit with 1013 when it cannot be committed in time", async () => {
    const { store, join, clock } = setup({ "/": 0 }, { commitTimeoutMs: 1000 });
    store.hold();
    const a = join("/");
    await settle();
    await clock.advanceAsync(1000);
    store.failHeld();
    await settle();
    expect(a.peer.closed).toEqual({ code: 1013, reason: "visit not recorded: database unavailable" });
    expect(a.peer.sent).toEqual([]);
    expect(store.data.get("/")).toBe(0);
  });
});

describe("Hub: rooms and online", () => {
  it("open and close change online for watchers of that key only", async () => {
    const { hub, join, quiet } = setup();
    const a = join("/a");
    const b = join("/b");
    await quiet();
    expect(hello(a.peer)).toMatchObject({ key: "/a", online: 1, total: 1 });
    expect(hello(b.peer)).toMatchObject({ key: "/b", online: 1, total: 1 });
    a.peer.clear();
    b.peer.clear();

    const c = join("/a");
    await quiet();
    expect(a.peer.sent).toEqual([{ type: "count", key: "/a", total: 2, online: 2, visitors: 0, seq: 2 }]);
    expect(b.peer.sent).toEqual([]);
    expect(hub.room("/a")!.online).toBe(2);
    expect(hub.room("/b")!.online).toBe(1);

    c.session.close();
    const cSeen = c.peer.sent.length;
    await quiet();
    expect(a.peer.sent.at(-1)).toEqual({ type: "count", key: "/a", total: 2, online: 1, visitors: 0, seq: 3 });
    expect(a.peer.sent).toHaveLength(2);
    expect(b.peer.sent).toEqual([]);
    expect(c.peer.sent).toHaveLength(cSeen);
    expect(hub.room("/a")!.online).toBe(1);
    expect(hub.sockets).toBe(2);
  });

  it("closing twice counts once", async () => {
    const { hub, join, quiet } = setup();
    const a = join("/");
    const b = join("/");
    await quiet();
    b.session.close();
    b.session.close();
    await quiet();
    expect(hub.room("/")!.online).toBe(1);
    expect(counts(a.peer).at(-1)).toMatchObject({ online: 1 });
  });

  it("forgets a room when its last socket closes", async () => {
    const { hub, join, quiet } = setup();
    const a = join("/gone");
    await quiet();
    a.session.close();
    await quiet();
    expect(hub.room("/gone")).toBeUndefined();
    expect([...hub.rooms()].length).toBe(0);
  });

  it("adds other instances' sockets to online", async () => {
    const { hub, join, quiet } = setup();
    const a = join("/");
    await quiet();
    hub.observeRemoteOnline("/", 3);
    await quiet();
    expect(counts(a.peer).at(-1)).toMatchObject({ online: 4 });
    const b = join("/");
    await quiet();
    expect(hello(b.peer)).toMatchObject({ online: 5 });
    hub.observeRemoteOnline("/", 0);
    await quiet();
    expect(counts(a.peer).at(-1)).toMatchObject({ online: 2 });
    hub.observeRemoteOnline("/elsewhere", 0);
    expect(hub.room("/elsewhere")).toBeUndefined();
  });

  it("answers ping with pong and closes on bad client messages", async () => {
    const { join, quiet } = setup();
    const a = join("/");
    const b = join("/");
    const c = join("/");
    const d = join("/");
    await quiet();
    a.peer.clear();
    a.session.message('{"type":"ping"}', 15);
    expect(a.peer.sent).toEqual([{ type: "pong" }]);
    expect(a.peer.closed).toBeNull();
    b.session.message(null, 3);
    expect(b.peer.closed).toEqual({ code: 1003, reason: "binary messages are not accepted" });
    c.session.message("hello?", 6);
    expect(c.peer.closed?.code).toBe(1003);
    d.session.message(`{"type":"ping","x":"${"x".repeat(600)}"}`, 622);
    expect(d.peer.closed?.code).toBe(1009);
  });

  it("ignores messages after close", async () => {
    const { join, quiet } = setup();
    const a = join("/");
    await quiet();
    a.session.close();
    a.peer.clear();
    a.session.message('{"type":"ping"}', 15);
    a.session.message(null, 1);
    expect(a.peer.sent).toEqual([]);
    expect(a.peer.closed).toBeNull();
  });
});

describe("Hub: coalesced broadcast", () => {
  it("sends a lone change at once and coalesces changes within an interval", async () => {
    const { join, quiet, clock } = setup();
    const a = join("/");
    await quiet();
    a.peer.clear();

    const t0 = clock.now();
    join("/");
    await clock.advanceAsync(0);
    expect(a.peer.sent).toEqual([{ type: "count", key: "/", total: 2, online: 2, visitors: 0, seq: 2 }]);

    await clock.advanceAsync(5);
    join("/");
    await clock.advanceAsync(5);
    join("/");
    const c = join("/");
    await clock.advanceAsync(5);
    c.session.close();
    await clock.advanceAsync(t0 + 24 - clock.now());
    expect(a.peer.sent).toHaveLength(1);
    await clock.advanceAsync(1);
    expect(a.peer.sent).toEqual([
      { type: "count", key: "/", total: 2, online: 2, visitors: 0, seq: 2 },
      { type: "count", key: "/", total: 5, online: 4, visitors: 0, seq: 3 },
    ]);
    await quiet(1000);
    expect(a.peer.sent).toHaveLength(2);
  });

  it("costs one count per watcher for a crowd arriving at once", async () => {
    const { join, quiet, store } = setup();
    const a = join("/");
    await quiet();
    a.peer.clear();
    const crowd = Array.from({ length: 50 }, () => join("/"));
    await quiet();
    expect(store.calls).toHaveLength(2);
    expect(a.peer.sent).toEqual([{ type: "count", key: "/", total: 51, online: 51, visitors: 0, seq: 2 }]);
    for (const j of crowd) {
      expect(j.peer.sent.map((m) => m.type)).toEqual(["hello", "count"]);
      expect(j.peer.sent[1]).toEqual({ type: "count", key: "/", total: 51, online: 51, visitors: 0, seq: 2 });
    }
    // Encoded once: every watcher got the same string.
    expect(new Set([a.peer, ...crowd.map((j) => j.peer)].map((p) => p.raw.at(-1))).size).toBe(1);
  });

  it("count seq strictly increases and follows the hello", async () => {
    const { join, quiet, clock } = setup();
    const a = join("/");
    const others: Array<ReturnType<typeof join>> = [];
    for (let i = 0; i < 30; i++) {
      if (i % 3 === 2) others.shift()!.session.close();
      else others.push(join("/"));
      await clock.advanceAsync(i % 2 ? 3 : 40);
    }
    await quiet();
    const seqs = [hello(a.peer).seq as number, ...counts(a.peer).map((m) => m.seq as number)];
    expect(seqs.length).toBeGreaterThan(15);
    for (let i = 1; i < seqs.length; i++) expect(seqs[i]).toBe(seqs[i - 1]! + 1);
    for (const j of others) {
      const mine = j.peer.sent.map((m) => m.seq as number);
      expect(j.peer.sent[0]!.type).toBe("hello");
      for (let i = 1; i < mine.length; i++) expect(mine[i]).toBeGreaterThan(mine[i - 1]!);
    }
  });

  it("never shows a total going down", async () => {
    const { hub, join, quiet, store } = setup({ "/": 4 });
    const a = join("/");
    await quiet();
    a.peer.clear();
    hub.observeTotal("/", 3);
    hub.observeTotal("/", 5);
    await quiet();
    expect(a.peer.sent).toEqual([]);
    expect(hub.room("/")!.total).toBe(5);

    hub.observeTotal("/", 9);
    await quiet();
    expect(a.peer.sent).toEqual([{ type: "count", key: "/", total: 9, online: 1, visitors: 0, seq: 2 }]);

    // A commit that reports less than what is already known does not pull the total back.
    store.data.set("/", 5);
    const b = join("/");
    await quiet();
    expect(hello(b.peer)).toMatchObject({ total: 9, visitor: 6 });
    expect(counts(a.peer).map((m) => m.total)).toEqual([9, 9]);
    expect(hub.room("/")!.total).toBe(9);
  });

  it("ignores totals for keys nobody here watches", () => {
    const { hub } = setup();
    hub.observeTotal("/nobody", 10);
    expect(hub.room("/nobody")).toBeUndefined();
  });
});

describe("Hub: a visit without a socket (the pixel)", () => {
  it("commits like any visit, shows the new total to the key's watchers, is never online and makes no room", async () => {
    const { hub, join, quiet, store } = setup({ "/": 10, "/quiet": 0 });
    const a = join("/");
    await quiet();
    const committed = await hub.count("/");
    expect(committed).toEqual({ key: "/", total: 12, visitor: 12 });
    await quiet();
    expect(counts(a.peer).at(-1)).toMatchObject({ total: 12, online: 1 });
    expect(await hub.count("/quiet")).toMatchObject({ total: 1 });
    expect(hub.room("/quiet")).toBeUndefined();
    expect(store.calls.flatMap((c) => Object.entries(c))).toEqual([["/", 1], ["/", 1], ["/quiet", 1]]);
  });

  it("is refused while the hub drains", async () => {
    const { hub } = setup();
    await hub.drain();
    await expect(hub.count("/")).rejects.toThrow(/shutting down/);
  });
});

describe("Hub: resume tokens", () => {
  async function firstVisit() {
    const env = setup({ "/": 41, "/b": 0 });
    const a = env.join("/");
    await env.quiet();
    const token = hello(a.peer).resume as string;
    a.session.close();
    await env.quiet();
    expect(env.hub.room("/")).toBeUndefined();
    expect(env.store.calls).toEqual([{ "/": 1 }]);
    return { ...env, token };
  }

  it("a valid token for the same key does not count a new visit", async () => {
    const { join, quiet, store, token, metrics } = await firstVisit();
    const again = join("/", token);
    await quiet();
    expect(store.calls).toEqual([{ "/": 1 }]);
    expect(store.data.get("/")).toBe(42);
    expect(store.totalsCalls).toEqual([["/"]]); // the room was gone, so its total was loaded
    expect(again.peer.sent[0]).toEqual({ type: "hello", key: "/", total: 42, online: 1, visitors: 0, visitor: 42, resume: token, seq: 0 });
    expect(metrics.resumes.value).toBe(1);
  });

  it("a resume into a live room needs no query", async () => {
    const { join, quiet, store, token } = await firstVisit();
    const other = join("/");
    await quiet();
    const again = join("/", token);
    await quiet();
    expect(store.calls).toEqual([{ "/": 1 }, { "/": 1 }]);
    expect(store.totalsCalls).toEqual([]);
    expect(hello(again.peer)).toMatchObject({ visitor: 42, total: 43, online: 2 });
    expect(counts(other.peer).at(-1)).toMatchObject({ total: 43, online: 2 });
  });

  async function countsNewVisit(env: Awaited<ReturnType<typeof firstVisit>>, key: string, token: string, visitor: number) {
    const before = env.store.calls.length;
    const j = env.join(key, token);
    await env.quiet();
    expect(env.store.calls).toHaveLength(before + 1);
    expect(env.store.calls.at(-1)).toEqual({ [key]: 1 });
    const h = hello(j.peer);
    expect(h.visitor).toBe(visitor);
    expect(h.resume).not.toBe(token);
    expect(env.metrics.resumes.value).toBe(0);
  }

  it("a token for another key counts a new visit", async () => {
    const env = await firstVisit();
    await countsNewVisit(env, "/b", env.token, 1);
  });

  it("an expired token counts a new visit", async () => {
    const env = await firstVisit();
    await env.clock.advanceAsync(3600 * 1000);
    await countsNewVisit(env, "/", env.token, 43);
  });

  it("a tampered token counts a new visit", async () => {
    const env = await firstVisit();
    const [v, e, mac] = env.token.split(".") as [string, string, string];
    const flipped = mac.slice(0, -1) + (mac.endsWith("0") ? "1" : "0");
    await countsNewVisit(env, "/", `${v}.${e}.${flipped}`, 43);
    await countsNewVisit(env, "/", `1.${e}.${mac}`, 44);
  });

  it("a malformed token counts a new visit", async () => {
    const env = await firstVisit();
    await countsNewVisit(env, "/", "garbage", 43);
    await countsNewVisit(env, "/", "", 44);
    await countsNewVisit(env, "/", `${env.token}.x`, 45);
  });

  it("a resume whose total cannot be loaded is closed with 1013", async () => {
    const { join, quiet, store, token } = await firstVisit();
    store.totalsError = new Error("database unavailable");
    const again = join("/", token);
    await quiet();
    expect(again.peer.closed).toEqual({ code: 1013, reason: "database unavailable" });
    expect(again.peer.sent).toEqual([]);
    expect(store.calls).toHaveLength(1);
  });
});

describe("Hub: shutdown", () => {
  it("drain commits what is pending and refuses new sockets; closeAll sends 1001 to every peer", async () => {
    const { hub, join, quiet, store } = setup({ "/": 0, "/b": 0 });
    const a = join("/");
    const z = join("/b");
    await quiet();
    a.peer.clear();

    store.hold();
    const b = join("/");
    await settle();
    let drained = false;
    const draining = hub.drain().then(() => (drained = true));
    await settle();
    expect(hub.draining).toBe(true);
    expect(drained).toBe(false);

    const c = join("/");
    expect(c.peer.closed).toEqual({ code: 1001, reason: "server is shutting down" });
    await settle();
    expect(store.calls).toEqual([{ "/": 1, "/b": 1 }, { "/": 1 }]);
    expect(hub.room("/")!.online).toBe(2);

    store.commitHeld();
    await draining;
    expect(hello(b.peer)).toMatchObject({ visitor: 2, total: 2 });
    // drain pushes the last numbers out without waiting for the interval.
    expect(counts(a.peer).at(-1)).toMatchObject({ total: 2, online: 2 });
    expect(c.peer.sent).toEqual([]);

    const closed = hub.closeAll();
    expect(closed).toBe(3);
    for (const p of [a.peer, b.peer, z.peer]) expect(p.closed).toEqual({ code: 1001, reason: "server shutting down" });
    expect(hub.sockets).toBe(0);

    const d = join("/");
    expect(d.peer.closed?.code).toBe(1001);
    await quiet(1000);
    expect(store.calls).toHaveLength(2);
    for (const p of [a.peer, b.peer, c.peer, d.peer, z.peer]) expect(p.sendsAfterClose).toBe(0);
  });

  it("drain waits for a failing store to come back", async () => {
    const { hub, join, clock, store } = setup({ "/": 0 }, { commitTimeoutMs: 60_000 });
    store.failNext(3);
    const a = join("/");
    let drained = false;
    void hub.drain().then(() => (drained = true));
    await clock.advanceAsync(20);
    expect(drained).toBe(false);
    await clock.advanceAsync(2000);
    expect(drained).toBe(true);
    expect(hello(a.peer)).toMatchObject({ visitor: 1 });
    expect(store.data.get("/")).toBe(1);
  });
});
