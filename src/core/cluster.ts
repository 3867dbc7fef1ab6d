import type { Hub } from "./hub.ts";
import type { Bus, Clock, CounterStore, Logger, TimerHandle } from "./ports.ts";

// Many instances sharing one PostgreSQL (DESIGN.md §5). Totals arrive as
// NOTIFYs sent by the increment statement itself; each instance publishes
// its own per-key online counts (coalesced deltas, plus a full snapshot as a
// heartbeat) and forgets an instance that has not been heard from within the
// TTL. After every reconnect of the listening connection the instance resyncs
// totals from the table and asks the others for their presence.

export interface ClusterOptions {
  instanceId: string;
  presenceTtlMs: number;
  /** Coalescing interval for presence deltas. */
  presenceIntervalMs: number;
}

interface Remote {
  seen: number;
  counts: Map<string, number>;
}

/** Presence message: i = instance, r = reset (first chunk of a full snapshot), q = please send yours, o = [key, n] pairs. */
interface PresenceMessage {
  i: string;
  r?: 1;
  q?: 1;
  o?: Array<[string, number]>;
}

/** NOTIFY payloads are limited to 8000 bytes; stay well under. */
const MAX_PAYLOAD_CHARS = 7000;

export class Cluster {
  readonly #hub: Hub;
  readonly #bus: Bus;
  readonly #store: CounterStore;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #opts: ClusterOptions;
  readonly #remotes = new Map<string, Remote>();
  /** Sum of other instances' sockets per key. */
  readonly #remoteOnline = new Map<string, number>();
  /** What we last told the others, per key. */
  readonly #published = new Map<string, number>();
  #dirty = new Set<string>();
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
  }

  get reconnects(): number {
    return this.#bus.reconnects;
  }

  get instances(): number {
    return this.#remotes.size + 1;
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
    // Tell the others at once rather than letting them wait for the TTL.
    const gone = [...this.#published.keys()].map((k): [string, number] => [k, 0]);
    await this.#send({ i: this.#opts.instanceId, r: 1 }, gone).catch(() => {});
    await this.#bus.close();
  }

  #onTotal(payload: string): void {
    let msg: { k?: unknown; t?: unknown; r?: unknown };
    try {
      msg = JSON.parse(payload) as typeof msg;
    } catch {
      return;
    }
    if (typeof msg.k !== "string" || typeof msg.t !== "number") return;
    if (msg.r === true) this.#hub.resetTotal(msg.k, msg.t);
    else this.#hub.observeTotal(msg.k, msg.t);
  }

  #onPresence(payload: string): void {
    let msg: PresenceMessage;
    try {
      msg = JSON.parse(payload) as PresenceMessage;
    } catch {
      return;
    }
    if (typeof msg.i !== "string" || msg.i === this.#opts.instanceId) return;
    let remote = this.#remotes.get(msg.i);
    if (!remote) {
      remote = { seen: 0, counts: new Map() };
      this.#remotes.set(msg.i, remote);
    }
    remote.seen = this.#clock.now();
    if (msg.r) for (const key of [...remote.counts.keys()]) this.#setRemote(remote, key, 0);
    for (const pair of msg.o ?? []) {
      if (Array.isArray(pair) && typeof pair[0] === "string" && typeof pair[1] === "number") this.#setRemote(remote, pair[0], pair[1]);
    }
    if (msg.q) this.#heartbeat();
  }

  #setRemote(remote: Remote, key: string, n: number): void {
    const before = remote.counts.get(key) ?? 0;
    if (before === n) return;
    if (n === 0) remote.counts.delete(key);
    else remote.counts.set(key, n);
    const sum = (this.#remoteOnline.get(key) ?? 0) + n - before;
    if (sum <= 0) this.#remoteOnline.delete(key);
    else this.#remoteOnline.set(key, sum);
    this.#hub.observeRemoteOnline(key, Math.max(0, sum));
  }

  async #onConnect(reconnected: boolean): Promise<void> {
    if (reconnected) this.#log.info("bus reconnected; resyncing");
    // Ask the others for their presence and tell them ours.
    await this.#send({ i: this.#opts.instanceId, r: 1, q: 1 }, this.#snapshot()).catch(() => {});
    const keys = [...this.#hub.rooms()].filter((r) => r.peers.size > 0).map((r) => r.key);
    for (let i = 0; i < keys.length; i += 500) {
      const chunk = keys.slice(i, i + 500);
      try {
        const totals = await this.#store.totals(chunk);
        for (const [key, total] of totals) this.#hub.observeTotal(key, total);
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
    const pairs: Array<[string, number]> = [];
    for (const key of this.#dirty) {
      const n = this.#hub.room(key)?.peers.size ?? 0;
      if ((this.#published.get(key) ?? 0) === n) continue;
      pairs.push([key, n]);
    }
    this.#dirty = new Set();
    if (pairs.length > 0) void this.#send({ i: this.#opts.instanceId }, pairs).catch(() => {});
  }

  #snapshot(): Array<[string, number]> {
    const pairs: Array<[string, number]> = [];
    for (const room of this.#hub.rooms()) if (room.peers.size > 0) pairs.push([room.key, room.peers.size]);
    return pairs;
  }

  #heartbeat(): void {
    if (this.#closed) return;
    this.#dirty = new Set();
    void this.#send({ i: this.#opts.instanceId, r: 1 }, this.#snapshot()).catch(() => {});
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
      const cutoff = this.#clock.now() - this.#opts.presenceTtlMs;
      for (const [id, remote] of this.#remotes) {
        if (remote.seen >= cutoff) continue;
        this.#log.info("instance expired", { instance: id, keys: remote.counts.size });
        for (const key of [...remote.counts.keys()]) this.#setRemote(remote, key, 0);
        this.#remotes.delete(id);
      }
      this.#scheduleExpiry();
    }, Math.max(25, Math.floor(this.#opts.presenceTtlMs / 4)));
  }

  /** Sends `head` with `pairs`, split so each payload fits; only the first chunk carries r/q. */
  async #send(head: PresenceMessage, pairs: Array<[string, number]>): Promise<void> {
    let chunk: Array<[string, number]> = [];
    let size = 0;
    let first = true;
    const flush = async () => {
      const msg: PresenceMessage = first ? { ...head, o: chunk } : { i: head.i, o: chunk };
      first = false;
      await this.#bus.publishPresence(JSON.stringify(msg));
      for (const [k, n] of chunk) {
        if (n === 0) this.#published.delete(k);
        else this.#published.set(k, n);
      }
      chunk = [];
      size = 0;
    };
    if (head.r) this.#published.clear();
    for (const pair of pairs) {
      const len = pair[0].length * 3 + 16; // UTF-8 bytes, upper bound
      if (size + len > MAX_PAYLOAD_CHARS && chunk.length > 0) await flush();
      chunk.push(pair);
      size += len;
    }
    if (chunk.length > 0 || first) await flush();
  }
}
