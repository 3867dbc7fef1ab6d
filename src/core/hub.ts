import { WriteBatcher, type Committed } from "./batcher.ts";
import { Broadcaster } from "./broadcaster.ts";
import { ShuttingDownError } from "./errors.ts";
import type { KeyLimit } from "./key-limit.ts";
import { Listeners } from "./listeners.ts";
import type { HubMetrics } from "./metrics.ts";
import { CloseCode } from "./protocol.ts";
import { Room, type RoomHost, type RoomOptions, type Session, type Snapshot, type Today } from "./room.ts";
import type { Clock, CounterStore, Fanout, Logger, Peer, Signer } from "./ports.ts";
import { daysBefore, utcDay, type VisitorIds, type Who } from "./visitors.ts";

// The in-process host of rooms (Node, Bun, Deno): one room per key that has
// sockets here, one group-commit batcher and one coalescing broadcaster for
// all of them. The counting rules are the room's (room.ts); the hub only
// routes keys to rooms, shares the I/O, and forgets rooms nobody watches.

export interface HubOptions extends RoomOptions {
  broadcastIntervalMs: number;
  commitTimeoutMs: number;
  /** The batcher's gatherMs: > 0 for a store that commits synchronously (core/batcher.ts). */
  commitGatherMs?: number;
  /** Days of daily numbers kept (HISTORY_RETENTION_DAYS); the roll-up deletes older ones. */
  historyRetentionDays?: number;
}

export interface HubDeps {
  store: CounterStore;
  fanout: Fanout;
  clock: Clock;
  signer: Signer;
  log: Logger;
  metrics?: HubMetrics;
  /** MAX_KEYS: consulted before every commit (core/key-limit.ts); `store` should be its keyCountingStore. */
  keys?: KeyLimit;
  /** Hashes people for the day's visitors, where the store keeps days. */
  visitors?: VisitorIds;
}

/** The fan-out for runtimes without a native one: write the encoded message to each watcher. */
export const loopFanout: Fanout = {
  publish(_key, text, peers) {
    for (const peer of peers) peer.send(text);
  },
};

/** How long after midnight UTC an idle server rolls up the day before (a commit of the new day does it at once). */
const ROLL_UP_AFTER_MIDNIGHT_MS = 60_000;

const refusedSession = (key: string): Session => ({ key, message: () => {}, close: () => {} });

export class Hub {
  readonly batcher: WriteBatcher;
  /** This instance's socket count for a key changed (the cluster publishes it). */
  readonly socketsChanged = new Listeners<string>();
  /** A key's update went out: its room has the numbers (webhook online thresholds). */
  readonly updated = new Listeners<Room>();
  readonly #rooms = new Map<string, Room>();
  readonly #broadcaster: Broadcaster;
  readonly #deps: HubDeps;
  readonly #host: RoomHost;
  #draining = false;
  /** The day whose roll-up last ran, and the timer for the next one (just after the next UTC midnight). */
  #rolledUp: string | null = null;
  #rollUpTimer: unknown = null;

  constructor(deps: HubDeps, opts: HubOptions) {
    this.#deps = deps;
    const metrics = deps.metrics;
    this.batcher = new WriteBatcher(deps.store, deps.clock, deps.log, {
      commitTimeoutMs: opts.commitTimeoutMs,
      gatherMs: opts.commitGatherMs,
      visitors: deps.visitors,
      onDay: metrics
        ? (bots, fresh) => {
            metrics.bots.inc(bots);
            metrics.visitors.inc(fresh);
          }
        : undefined,
      onNewDay: (day) => void this.#rollUp(day, opts.historyRetentionDays ?? 90),
      onCommit: metrics
        ? (_keys, visits) => {
            metrics.commits.inc();
            metrics.visits.inc(visits);
            metrics.batchSize.observe(visits);
          }
        : undefined,
    });
    this.#broadcaster = new Broadcaster(opts.broadcastIntervalMs, deps.clock, (key) => this.#rooms.get(key)?.emit());
    this.#host = {
      clock: deps.clock,
      signer: deps.signer,
      log: deps.log,
      options: { resumeTtlS: opts.resumeTtlS, messageBurst: opts.messageBurst, messagePerSec: opts.messagePerSec },
      metrics,
      commit: (key, who) => this.#commit(key, who),
      loadTotal: async (key) => (await deps.store.totals([key])).get(key) ?? 0,
      loadToday: deps.store.day && (async (key, day) => (await deps.store.day!.today([key], day)).get(key)),
      schedule: (room) => this.#broadcaster.touch(room.key),
      publish: (room, text) => deps.fanout.publish(room.key, text, room.watchers),
      socketsChanged: (room) => {
        this.socketsChanged.emit(room.key);
        this.#release(room);
      },
      updated: (room) => this.updated.emit(room),
    };
  }

  get draining(): boolean {
    return this.#draining;
  }

  /** Binds a socket accepted for `key` to its room: a new visit, or a reconnect with its resume token. */
  admit(peer: Peer, key: string, resume: string | null, who?: Who): Session {
    if (this.#draining) {
      // Refused before it joins a room, so it is never counted online.
      peer.close(CloseCode.goingAway, new ShuttingDownError().message);
      return refusedSession(key);
    }
    return this.#room(key).admit(peer, resume, who);
  }

  /**
   * A visit that holds no socket (the no-JavaScript pixel): committed like any
   * other and shown to the key's watchers here, never online. No room is made
   * for it: rooms follow sockets.
   */
  async count(key: string, who?: Who): Promise<Committed> {
    if (this.#draining) throw new ShuttingDownError();
    const committed = await this.#commit(key, who);
    const room = this.#rooms.get(key);
    if (committed.today) room?.observeToday(committed.today);
    room?.observeTotal(committed.total);
    return committed;
  }

  /** The room for `key` if anyone is on it here or elsewhere. */
  room(key: string): Room | undefined {
    return this.#rooms.get(key);
  }

  rooms(): IterableIterator<Room> {
    return this.#rooms.values();
  }

  /** Open sockets on this instance, over all keys. */
  get sockets(): number {
    let n = 0;
    for (const room of this.#rooms.values()) n += room.peers.size;
    return n;
  }

  /** Current numbers for the JSON API: the live room's, or the store's for a key nobody is on. */
  async snapshot(key: string): Promise<Snapshot> {
    const room = this.#rooms.get(key);
    if (room) return room.snapshot();
    const day = this.#deps.store.day;
    // One query after the other, as in Room.snapshot: never two pool connections for one request.
    const totals = await this.#deps.store.totals([key]);
    const today = day ? await day.today([key], utcDay(this.#deps.clock.now())) : undefined;
    const t = today?.get(key);
    return { key, total: totals.get(key) ?? 0, online: 0, visitors: t?.visitors ?? 0, bots: t?.bots ?? 0 };
  }

  /** A total learned elsewhere (another instance's commit, a resync), with that commit's day numbers when it had them. */
  observeTotal(key: string, total: number, today?: Today): void {
    const room = this.#rooms.get(key);
    if (today) room?.observeToday(today);
    room?.observeTotal(total);
  }

  /** An administrator set the total. */
  resetTotal(key: string, total: number): void {
    this.#rooms.get(key)?.reset(total);
  }

  /** Other instances' sockets for a key changed. */
  observeRemoteOnline(key: string, remote: number): void {
    const room = remote > 0 ? this.#room(key) : this.#rooms.get(key);
    if (!room) return;
    room.setRemoteOnline(remote);
    this.#release(room);
  }

  /** Shutdown, step one: refuse new sockets and commit what is pending. The caller bounds it with its deadline. */
  async drain(): Promise<void> {
    this.#draining = true;
    await this.batcher.flush();
    this.#broadcaster.flush();
  }

  /** Shutdown, step two: every socket gets `code` so clients reconnect elsewhere. */
  closeAll(code: number = CloseCode.goingAway, reason = "server shutting down"): number {
    this.#broadcaster.stop();
    if (this.#rollUpTimer !== null) this.#deps.clock.clearTimeout(this.#rollUpTimer);
    this.#rollUpTimer = null;
    let n = 0;
    for (const room of [...this.#rooms.values()]) n += room.closeAll(code, reason);
    return n;
  }

  /** A visit's commit, within MAX_KEYS: a place is held for a key that may be new until its commit settles. */
  #commit(key: string, who?: Who): Promise<Committed> {
    const keys = this.#deps.keys;
    if (!keys) return this.batcher.add(key, who);
    const run = (release: () => void) => {
      const committed = this.batcher.add(key, who);
      committed.then(release, release);
      return committed;
    };
    const reserved = keys.reserve(key);
    return typeof reserved === "function" ? run(reserved) : reserved.then(run);
  }

  /**
   * Deletes the hashes and salts of the days before `day`, and daily rows past
   * retention, in the background: counting never waits for it, and a failure
   * is tried again at the next day's first commit (or the next start).
   */
  async #rollUp(day: string, retentionDays: number): Promise<void> {
    const store = this.#deps.store.day;
    if (!store || this.#rolledUp === day) return;
    this.#rolledUp = day;
    // An idle server rolls up too: the day's hashes must not wait for the next visit to go.
    if (this.#rollUpTimer !== null) this.#deps.clock.clearTimeout(this.#rollUpTimer);
    const next = Date.parse(`${day}T00:00:00Z`) + 86_400_000;
    this.#rollUpTimer = this.#deps.clock.setTimeout(() => {
      this.#rollUpTimer = null;
      void this.#rollUp(utcDay(this.#deps.clock.now()), retentionDays);
    }, Math.max(1000, next + ROLL_UP_AFTER_MIDNIGHT_MS - this.#deps.clock.now()));
    try {
      const hashes = await store.rollUp(day, daysBefore(day, retentionDays));
      if (hashes > 0) this.#deps.log.info("visitor hashes of past days deleted", { hashes });
    } catch (err) {
      this.#deps.log.warn("roll-up of past days failed", { err });
      this.#rolledUp = null; // the next commit tries again
    }
  }

  #room(key: string): Room {
    let room = this.#rooms.get(key);
    if (!room) {
      room = new Room(key, this.#host);
      this.#rooms.set(key, room);
    }
    return room;
  }

  /** Memory follows live keys only. */
  #release(room: Room): void {
    if (room.empty && this.#rooms.get(room.key) === room) this.#rooms.delete(room.key);
  }
}
