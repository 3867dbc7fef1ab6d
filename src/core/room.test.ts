import { describe, expect, it } from "vitest";
import { Room, type RoomHost } from "./room.ts";
import { FakeClock, FakePeer, fakeSigner, settle, silentLogger } from "./testing.ts";

// The room as a Durable Object hosts it: one key, its own commit and load,
// its broadcasts run by the test. (The Hub, which hosts many rooms, has its
// own suite: hub.test.ts.)

function host(stored: number) {
  const clock = new FakeClock();
  const scheduled: Room[] = [];
  const published: string[] = [];
  let total = stored;
  const h: RoomHost = {
    clock,
    signer: fakeSigner(),
    log: silentLogger,
    options: { resumeTtlS: 3600, messageBurst: 2, messagePerSec: 0 },
    commit: async (key) => ({ key, total: ++total, visitor: total }),
    loadTotal: async () => total,
    schedule: (room) => scheduled.push(room),
    publish: (room, text) => {
      published.push(text);
      for (const p of room.watchers) p.send(text);
    },
    socketsChanged: () => {},
    updated: () => {},
  };
  return { h, scheduled, published, clock };
}

describe("Room", () => {
  it("totals only move forward, and the first one known counts as news", async () => {
    const { h, scheduled } = host(0);
    const room = new Room("/", h);
    room.observeTotal(0);
    expect(room.totalKnown).toBe(true);
    expect(scheduled).toHaveLength(1);
    room.observeTotal(0);
    room.observeTotal(10);
    room.observeTotal(9);
    expect(room.total).toBe(10);
    expect(scheduled).toHaveLength(2);
  });

  it("a restored socket (a woken Durable Object) watches again without a new visit or a hello", async () => {
    const { h, published } = host(41);
    const room = new Room("/", h);
    room.seq = 2000; // the object's reserved sequence block
    const woken = new FakePeer("woken");
    room.restore(woken);
    expect(room.online).toBe(1);
    room.emit(); // total unknown after the wake: it is loaded, and observeTotal schedules the next emit
    await settle();
    expect(room.total).toBe(41);
    room.emit();
    expect(published).toHaveLength(1);
    expect(woken.sent).toEqual([{ type: "count", key: "/", total: 41, online: 1, visitors: 0, seq: 2001 }]);
    expect(woken.ofType("hello")).toEqual([]);

    const joiner = new FakePeer("joiner");
    room.admit(joiner, null);
    await settle();
    expect(joiner.ofType("hello")).toEqual([expect.objectContaining({ total: 42, visitor: 42, online: 2, seq: 2001 })]);
  });

  it("the message budget closes a chatty socket with 1008, and an admin reset is the one count flagged reset", async () => {
    const { h } = host(5);
    const room = new Room("/", h);
    const peer = new FakePeer();
    const session = room.admit(peer, null);
    await settle();
    session.message('{"type":"ping"}', 15);
    session.message('{"type":"ping"}', 15);
    expect(peer.ofType("pong")).toHaveLength(2);
    session.message('{"type":"ping"}', 15);
    expect(peer.closed).toEqual({ code: 1008, reason: "too many messages" });

    const watcher = new FakePeer();
    room.admit(watcher, null);
    await settle();
    room.reset(0);
    room.emit();
    room.emit();
    const counts = watcher.ofType("count");
    expect(counts.map((c) => c.reset)).toEqual([true, undefined]);
    expect(counts.map((c) => c.total)).toEqual([0, 0]);
  });

  it("a bot watches the counts but is not online, and its hello has visitor 0; today's visitors go out with every count", async () => {
    const { h, clock } = host(5);
    const day = new Date(clock.now()).toISOString().slice(0, 10);
    h.commit = async (key, who) => ({ key, total: who?.bot ? 5 : 6, visitor: who?.bot ? 0 : 6, today: { day, visitors: 3, bots: who?.bot ? 1 : 0 } });
    const room = new Room("/", h);
    const person = new FakePeer();
    room.admit(person, null, { bot: false, address: "a", ua: "u" });
    await settle();
    const bot = new FakePeer();
    room.admit(bot, null, { bot: true });
    await settle();
    expect(room.online).toBe(1);
    expect(room.empty).toBe(false);
    expect(bot.ofType("hello")).toEqual([expect.objectContaining({ total: 6, online: 1, visitors: 3, visitor: 0 })]);
    room.emit();
    expect(bot.ofType("count").at(-1)).toMatchObject({ total: 6, online: 1, visitors: 3 });
    expect(await room.snapshot()).toEqual({ key: "/", total: 6, online: 1, visitors: 3, bots: 1 });
    // Past midnight the room shows no visitors until today's are known.
    clock.advance(86_400_000);
    expect(room.visitors).toBe(0);
  });

  it("one page view, one socket: a resume while its socket is open takes over (1008 \"resumed elsewhere\"), online stays 1, nothing is counted", async () => {
    const { h } = host(10);
    let commits = 0;
    const commit = h.commit;
    h.commit = (key) => (commits++, commit(key));
    const room = new Room("/", h);
    const first = new FakePeer("first");
    const firstSession = room.admit(first, null);
    // The adapter's own close event comes later and finds the session closed (a half-open socket's never comes).
    first.onClose = () => firstSession.close();
    await settle();
    const token = String(first.ofType("hello")[0]!.resume);

    const second = new FakePeer("second");
    const secondSession = room.admit(second, token);
    expect(first.closed).toEqual({ code: 1008, reason: "resumed elsewhere" });
    expect(room.online).toBe(1);
    expect(room.peers.has(first)).toBe(false);
    await settle();
    expect(second.ofType("hello")).toEqual([expect.objectContaining({ total: 11, visitor: 11, online: 1 })]);

    // And again: the newest holds the place; the total never moved.
    const third = new FakePeer("third");
    room.admit(third, token);
    expect(second.closed).toEqual({ code: 1008, reason: "resumed elsewhere" });
    secondSession.close();
    expect(room.online).toBe(1);
    await settle();
    expect(room.total).toBe(11);
    expect(commits).toBe(1);

    // Another page view's socket is not touched; a closed session frees its entry.
    const other = new FakePeer("other");
    room.admit(other, null);
    await settle();
    expect(room.online).toBe(2);
    expect(third.closed).toBeNull();
  });

  it("the takeover survives a Durable Object's hibernation: a restored socket is still its visitor's one socket", async () => {
    const { h } = host(20);
    const room = new Room("/", h);
    const peer = new FakePeer();
    room.admit(peer, null);
    await settle();
    const token = String(peer.ofType("hello")[0]!.resume);
    const visitor = Number(peer.ofType("hello")[0]!.visitor);

    // Woken: a new room; the socket comes back from its attachment with its visitor number.
    const woken = new Room("/", h);
    const restored = new FakePeer("restored");
    woken.restore(restored, false, visitor);
    const again = new FakePeer("again");
    woken.admit(again, token);
    expect(restored.closed).toEqual({ code: 1008, reason: "resumed elsewhere" });
    expect(woken.online).toBe(1);
  });

  it("an invalid or expired token is a new visit and takes nothing over", async () => {
    const { h, clock } = host(0);
    const room = new Room("/", h);
    const first = new FakePeer();
    room.admit(first, null);
    await settle();
    const token = String(first.ofType("hello")[0]!.resume);
    const forged = new FakePeer();
    room.admit(forged, `${token.slice(0, -2)}xx`);
    clock.advance(3601_000);
    const late = new FakePeer();
    room.admit(late, token);
    await settle();
    expect(first.closed).toBeNull();
    expect(room.online).toBe(3);
    expect(room.total).toBe(3);
  });
});
