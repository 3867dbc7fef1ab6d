import type { Hub } from "./hub.ts";
import type { Bus, Clock, CounterStore, Logger, TimerHandle } from "./ports.ts";
import { utcDay } from "./visitors.ts";
import { chunks, parsePresence, RemotePresence, type Pairs, type PresenceMessage } from "./presence.ts";

// Many instances sharing one PostgreSQL (DESIGN.md §5). Totals arrive as
// NOTIFYs sent by the increment statement itself; each instance publishes
// its own per-key online counts (coalesced deltas, plus a full snapshot as a
// heartbeat) and forgets an instance that has not been heard from within the
// TTL. After every reconnect of the listening connection the instance resyncs
// totals from the table and asks the others for their presence.
//
// What travels, and how the others' counts are kept: presence.ts. Messages
// go out one at a time, so a snapshot's chunks never interleave with a delta.

export interface ClusterOptions {
  instanceId: string;
  presenceTtlMs: number;
  /** Coalescing interval for presence deltas. */
  presenceIntervalMs: number;
}

export class Cluster {
  readonly #hub: Hub;
  readonly #bus: Bus;
  readonly #store: CounterStore;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #opts: ClusterOptions;
  readonly #remote: RemotePresence;
  /** What we last told the others, per key. */
  readonly #published = new Map<string, number>();
  #dirty = new Set<string>();
  /** What the sender owes: a snapshot (asking the others for theirs or not), and/or the dirty keys' deltas. */
  #owe: { snapshot: { ask: boolean } | null; deltas: boolean } = { snapshot: null, deltas: false };
  /** The one send in progress; messages go out one at a time. */
  #sending: Promise<void> | null = null;
  #snapshotId = 0;
  #deltaTimer: TimerHandle | null = null;
  #heartbeatTimer: TimerHandle | null = null;
  #expiryTimer: TimerHandle | null = null;
  #closed = false;
  #unsubscribe: (() => void) | null = null;

  constructor(hub: Hub, bus: Bus, store: CounterStore, clock: Clock, log: Logger, opts: ClusterOptions) {
    this.#hub = hub;
    this.#bus = bus;
    this.#store = store;
    this.#clock = clock;
    this.#log = log;
    this.#opts = opts;
    this.#remote = new RemotePresence((key, sum) => this.#hub.observeRemoteOnline(key, sum));
  }

  get reconnects(): number {
    return this.#bus.reconnects;
  }

  get instances(): number {
    return this.#remote.instances + 1;
  }

  async start(): Promise<void> {
    this.#unsubscribe = this.#hub.socketsChanged.add((key) => this.#touch(key));
    await this.#bus.start({
      onTotal: (p) => this.#onTotal(p),
      onPresence: (p) => this.#onPresence(p),
      onConnect: (reconnected) => void this.#onConnect(reconnected),
      onDisconnect: () => this.#log.warn("bus disconnected; reconnecting"),
    });
    this.#scheduleHeartbeat();
    this.#scheduleExpiry();
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#unsubscribe?.();
    for (const t of [this.#deltaTimer, this.#heartbeatTimer, this.#expiryTimer]) if (t !== null) this.#clock.clearTimeout(t);
    // Tell the others at once rather than letting them wait for the TTL: an empty snapshot.
    await this.#sending;
    await this.#sendSnapshot([], false).catch(() => {});
    await this.#bus.close();
  }

  #onTotal(payload: string): void {
    let msg: { k?: unknown; t?: unknown; r?: unknown; d?: unknown; v?: unknown; b?: unknown };
    try {
      msg = JSON.parse(payload) as typeof msg;
    } catch {
      return;
    }
    if (typeof msg.k !== "string" || typeof msg.t !== "number") return;
    if (msg.r === true) this.#hub.resetTotal(msg.k, msg.t);
    else {
      // A commit that carried its day also says the key's visitors and bots of that day (db/day-store.ts).
      const today =
        typeof msg.d === "string" && typeof msg.v === "number" && typeof msg.b === "number" ? { day: msg.d, visitors: msg.v, bots: msg.b } : undefined;
      this.#hub.observeTotal(msg.k, msg.t, today);
    }
  }

  #onPresence(payload: string): void {
    const msg = parsePresence(payload);
    if (!msg || msg.i === this.#opts.instanceId) return;
    this.#remote.receive(msg, this.#clock.now());
    if (msg.q) this.#heartbeat();
  }

  async #onConnect(reconnected: boolean): Promise<void> {
    if (reconnected) this.#log.info("bus reconnected; resyncing");
    // Ask the others for their presence and tell them ours.
    this.#owe.snapshot = { ask: true };
    await this.#pump();
    const keys = [...this.#hub.rooms()].filter((r) => r.peers.size > 0).map((r) => r.key);
    for (let i = 0; i < keys.length; i += 500) {
      const chunk = keys.slice(i, i + 500);
      try {
        const day = utcDay(this.#clock.now());
        const [totals, today] = await Promise.all([this.#store.totals(chunk), this.#store.day?.today(chunk, day)]);
        for (const [key, total] of totals) {
          const t = today?.get(key);
          this.#hub.observeTotal(key, total, t && { day, visitors: t.visitors, bots: t.bots });
        }
      } catch (err) {
        this.#log.warn("resync failed", { err });
        return;
      }
    }
  }

  #touch(key: string): void {
    this.#dirty.add(key);
    if (this.#deltaTimer === null && !this.#closed) {
      this.#deltaTimer = this.#clock.setTimeout(() => this.#flushDeltas(), this.#opts.presenceIntervalMs);
    }
  }

  #flushDeltas(): void {
    this.#deltaTimer = null;
    this.#owe.deltas = true;
    void this.#pump();
  }

  /** Our keys whose count differs from what we last told the others. */
  #deltas(): Pairs {
    const pairs: Pairs = [];
    for (const key of this.#dirty) {
      const n = this.#hub.room(key)?.peers.size ?? 0;
      if ((this.#published.get(key) ?? 0) === n) continue;
      pairs.push([key, n]);
    }
    this.#dirty = new Set();
    return pairs;
  }

  #snapshot(): Pairs {
    const pairs: Pairs = [];
    for (const room of this.#hub.rooms()) if (room.peers.size > 0) pairs.push([room.key, room.peers.size]);
    return pairs;
  }

  #heartbeat(): void {
    if (this.#closed) return;
    this.#owe.snapshot = { ask: this.#owe.snapshot?.ask ?? false };
    void this.#pump();
  }

  /**
   * Sends what is owed, one message at a time, each computed when its turn
   * comes: so what it says is current, and what is owed stays two flags
   * however long the database takes.
   */
  #pump(): Promise<void> {
    // Cleared in a callback, never synchronously: a turn that sends nothing must not leave a settled promise behind.
    this.#sending ??= this.#drain().finally(() => (this.#sending = null));
    return this.#sending;
  }

  async #drain(): Promise<void> {
    while (!this.#closed && (this.#owe.snapshot || this.#owe.deltas)) {
      const snapshot = this.#owe.snapshot;
      this.#owe = { snapshot: null, deltas: false };
      if (snapshot) {
        this.#dirty = new Set(); // the snapshot says where every key is now
        await this.#sendSnapshot(this.#snapshot(), snapshot.ask).catch(() => {});
      } else {
        const pairs = this.#deltas();
        if (pairs.length > 0) await this.#sendChunks(chunks(pairs), () => ({ i: this.#opts.instanceId })).catch(() => {});
      }
    }
  }

  #scheduleHeartbeat(): void {
    if (this.#closed) return;
    this.#heartbeatTimer = this.#clock.setTimeout(() => {
      this.#heartbeat();
      this.#scheduleHeartbeat();
    }, Math.max(50, Math.floor(this.#opts.presenceTtlMs / 3)));
  }

  #scheduleExpiry(): void {
    if (this.#closed) return;
    this.#expiryTimer = this.#clock.setTimeout(() => {
      for (const gone of this.#remote.expire(this.#clock.now() - this.#opts.presenceTtlMs)) this.#log.info("instance expired", gone);
      this.#scheduleExpiry();
    }, Math.max(25, Math.floor(this.#opts.presenceTtlMs / 4)));
  }

  /** All our counts, replacing what the others knew of us: chunks with one id, the last saying how many. */
  async #sendSnapshot(pairs: Pairs, ask: boolean): Promise<void> {
    const s = ++this.#snapshotId;
    const parts = chunks(pairs);
    this.#published.clear();
    await this.#sendChunks(parts, (n) => {
      const msg: PresenceMessage = { i: this.#opts.instanceId, s };
      if (n === 0) {
        msg.r = 1;
        if (ask) msg.q = 1;
      }
      if (n === parts.length - 1) msg.e = parts.length;
      return msg;
    });
  }

  async #sendChunks(parts: Pairs[], head: (n: number) => PresenceMessage): Promise<void> {
    for (const [n, chunk] of parts.entries()) {
      await this.#bus.publishPresence(JSON.stringify({ ...head(n), o: chunk }));
      for (const [k, count] of chunk) {
        if (count === 0) this.#published.delete(k);
        else this.#published.set(k, count);
      }
    }
  }
}
