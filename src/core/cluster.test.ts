import { describe, expect, it } from "vitest";
import { Cluster } from "./cluster.ts";
import { Hub, loopFanout } from "./hub.ts";
import type { Bus, BusHandlers } from "./ports.ts";
import type { PresenceMessage } from "./presence.ts";
import { FakeClock, FakePeer, FakeStore, fakeSigner, silentLogger } from "./testing.ts";

// Presence across instances with an in-memory bus (every message reaches
// every other instance, in the order sent, unless the test drops it) and a
// fake clock: a snapshot too big for one NOTIFY replaces an instance's
// counts without any key dipping on the way.

const TTL = 1500;

class Network {
  readonly buses: FakeBus[] = [];
  readonly sent: PresenceMessage[] = [];
  /** Messages for which this returns true are lost. */
  drop: (msg: PresenceMessage) => boolean = () => false;
  bus(): FakeBus {
    const bus = new FakeBus(this);
    this.buses.push(bus);
    return bus;
  }
}

class FakeBus implements Bus {
  readonly connected = true;
  readonly reconnects = 0;
  handlers: BusHandlers | null = null;
  readonly #net: Network;
  constructor(net: Network) {
    this.#net = net;
  }
  async start(handlers: BusHandlers): Promise<void> {
    this.handlers = handlers;
    handlers.onConnect(false);
  }
  async publishPresence(payload: string): Promise<void> {
    const msg = JSON.parse(payload) as PresenceMessage;
    this.#net.sent.push(msg);
    if (this.#net.drop(msg)) return;
    for (const bus of this.#net.buses) if (bus !== this) bus.handlers?.onPresence(payload);
  }
  async close(): Promise<void> {
    this.handlers = null;
  }
}

function instance(net: Network, clock: FakeClock, id: string) {
  const hub = new Hub(
    { store: new FakeStore(), fanout: loopFanout, clock, signer: fakeSigner(), log: silentLogger },
    { broadcastIntervalMs: 25, commitTimeoutMs: 1000, resumeTtlS: 3600, messageBurst: 10, messagePerSec: 1 },
  );
  const cluster = new Cluster(hub, net.bus(), new FakeStore(), clock, silentLogger, { instanceId: id, presenceTtlMs: TTL, presenceIntervalMs: 100 });
  /** Every remote sum this instance's hub was told, in order. */
  const heard: Array<[string, number]> = [];
  const observe = hub.observeRemoteOnline.bind(hub);
  hub.observeRemoteOnline = (key, n) => {
    heard.push([key, n]);
    observe(key, n);
  };
  const join = (key: string) => {
    const peer = new FakePeer(key);
    const session = hub.admit(peer, key, null);
    peer.onClose = () => session.close();
    return peer;
  };
  return { hub, cluster, heard, join };
}

/** Long keys, so a snapshot of 300 takes several NOTIFY-sized chunks. */
const keyOf = (i: number) => `/blog/2026/a-rather-long-article-slug-number-${String(i).padStart(3, "0")}`;

async function setup(keys: number) {
  const net = new Network();
  const clock = new FakeClock();
  const a = instance(net, clock, "A");
  const b = instance(net, clock, "B");
  await a.cluster.start();
  await b.cluster.start();
  const peers = Array.from({ length: keys }, (_, i) => a.join(keyOf(i)));
  await clock.advanceAsync(200); // the deltas go out
  return { net, clock, a, b, peers };
}

const remoteOn = (hub: Hub, key: string) => hub.room(key)?.remoteOnline ?? 0;

describe("Cluster presence", () => {
  it("a snapshot in many chunks replaces an instance's counts without any key dipping, over three heartbeats", async () => {
    const { net, clock, a, b } = await setup(300);
    for (let i = 0; i < 300; i++) expect(remoteOn(b.hub, keyOf(i))).toBe(1);
    const from = b.heard.length;
    const sentBefore = net.sent.length;
    await clock.advanceAsync(TTL); // three heartbeats at TTL / 3
    const snapshots = net.sent.slice(sentBefore).filter((m) => m.s !== undefined && m.i === "A");
    expect(new Set(snapshots.map((m) => m.s)).size).toBe(3);
    expect(snapshots.filter((m) => m.e !== undefined).every((m) => m.e! > 1)).toBe(true); // several chunks each
    expect(b.heard.slice(from).filter(([, n]) => n < 1)).toEqual([]);
    for (let i = 0; i < 300; i++) expect(remoteOn(b.hub, keyOf(i))).toBe(1);
    await a.cluster.close();
    await b.cluster.close();
  });

  it("a whole snapshot zeroes a key whose delta was lost; one with a chunk missing zeroes nothing", async () => {
    const { net, clock, a, b, peers } = await setup(300);
    net.drop = (m) => m.s === undefined; // deltas are lost
    peers[0]!.close(1000, "bye");
    peers[299]!.close(1000, "bye");
    await clock.advanceAsync(200);
    expect(remoteOn(b.hub, keyOf(0))).toBe(1);

    // The next snapshot loses its second chunk: the counts it carried stay, and nothing is zeroed.
    let seen = 0;
    net.drop = (m) => m.s !== undefined && ++seen === 2;
    await clock.advanceAsync(TTL / 3);
    expect(remoteOn(b.hub, keyOf(0))).toBe(1);
    expect(remoteOn(b.hub, keyOf(299))).toBe(1);
    expect(remoteOn(b.hub, keyOf(150))).toBe(1);

    net.drop = () => false;
    await clock.advanceAsync(TTL / 3);
    expect(remoteOn(b.hub, keyOf(0))).toBe(0);
    expect(remoteOn(b.hub, keyOf(299))).toBe(0);
    for (let i = 1; i < 299; i++) expect(remoteOn(b.hub, keyOf(i))).toBe(1);
    await a.cluster.close();
    await b.cluster.close();
  });

  it("deltas sent while a snapshot is going out follow it, so the last word on a key is its current count", async () => {
    const { clock, a, b, peers } = await setup(300);
    // A heartbeat and a departure in the same instant: the snapshot is taken first, the delta after it.
    await clock.advanceAsync(TTL / 3 - 201);
    peers[10]!.close(1000, "bye");
    a.join(keyOf(20));
    await clock.advanceAsync(400);
    expect(remoteOn(b.hub, keyOf(10))).toBe(0);
    expect(remoteOn(b.hub, keyOf(20))).toBe(2);
    await a.cluster.close();
    await b.cluster.close();
  });

  it("a flush with nothing to say (a socket came and went between two flushes) does not stop later ones", async () => {
    const { clock, a, b } = await setup(0);
    const gone = a.join("/brief");
    gone.close(1000, "bye");
    await clock.advanceAsync(200);
    a.join("/later");
    await clock.advanceAsync(200);
    expect(remoteOn(b.hub, "/later")).toBe(1);
    await clock.advanceAsync(TTL * 2); // heartbeats keep A alive on B
    expect(remoteOn(b.hub, "/later")).toBe(1);
    await a.cluster.close();
    await b.cluster.close();
  });

  it("a stop withdraws every count at once; a silent instance expires after the TTL", async () => {
    const stopped = await setup(120);
    await stopped.a.cluster.close();
    for (let i = 0; i < 120; i++) expect(remoteOn(stopped.b.hub, keyOf(i))).toBe(0);
    await stopped.b.cluster.close();

    const silent = await setup(5);
    silent.net.drop = () => true; // A goes silent (SIGKILL, cut off)
    await silent.clock.advanceAsync(TTL - 100);
    expect(remoteOn(silent.b.hub, keyOf(0))).toBe(1);
    await silent.clock.advanceAsync(TTL / 4 + 200);
    for (let i = 0; i < 5; i++) expect(remoteOn(silent.b.hub, keyOf(i))).toBe(0);
    await silent.a.cluster.close();
    await silent.b.cluster.close();
  });

  it("understands an instance from before snapshot ids: a reset on its first chunk zeroes its keys", async () => {
    const { net, b, a } = await setup(0);
    const toB = (msg: PresenceMessage) => net.buses[1]!.handlers!.onPresence(JSON.stringify(msg));
    toB({ i: "old", r: 1, o: [["/x", 2], ["/y", 1]] });
    toB({ i: "old", o: [["/z", 4]] });
    expect([remoteOn(b.hub, "/x"), remoteOn(b.hub, "/y"), remoteOn(b.hub, "/z")]).toEqual([2, 1, 4]);
    toB({ i: "old", r: 1, o: [["/x", 1]] });
    expect([remoteOn(b.hub, "/x"), remoteOn(b.hub, "/y"), remoteOn(b.hub, "/z")]).toEqual([1, 0, 0]);
    // Garbage is ignored.
    for (const junk of ["", "null", "[]", '{"o":[["/x",9]]}', '{"i":"old","o":[["/x","9"],[1,2]]}']) net.buses[1]!.handlers!.onPresence(junk);
    expect(remoteOn(b.hub, "/x")).toBe(1);
    await a.cluster.close();
    await b.cluster.close();
  });
});
