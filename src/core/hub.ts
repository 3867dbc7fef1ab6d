import { WriteBatcher, type Committed } from "./batcher.ts";
import { Broadcaster } from "./broadcaster.ts";
import { ShuttingDownError } from "./errors.ts";
import { CloseCode, encode, parseClientMessage, PONG } from "./protocol.ts";
import { issueResumeToken, verifyResumeToken } from "./resume.ts";
import type { HubMetrics } from "./metrics.ts";
import { MessageBucket } from "./rate-limiter.ts";
import { Rooms, type Room } from "./rooms.ts";
import type { Clock, CounterStore, Fanout, Logger, Peer, Signer } from "./ports.ts";

// The hub is the counting rules in one place (DESIGN.md §4): a socket joins a
// key's room, its visit is group-committed, the joiner gets a hello after the
// commit, and every watcher gets a coalesced count. Adapters call open /
// message / close; they never decide anything.

export interface HubOptions {
  broadcastIntervalMs: number;
  commitTimeoutMs: number;
  resumeTtlS: number;
  /** Per-socket message budget: `messageBurst` at once, refilled at `messagePerSec`; over it, close 1008. */
  messageBurst?: number;
  messagePerSec?: number;
}

export interface HubDeps {
  store: CounterStore;
  fanout: Fanout;
  clock: Clock;
  signer: Signer;
  log: Logger;
  metrics?: HubMetrics;
}

/** What an adapter holds per socket. */
export interface Session {
  readonly key: string;
  /** `data` is a text frame's text, or null for a binary frame. */
  message(data: string | null, byteLength: number): void;
  close(): void;
}

export interface HubStats {
  visitsCommitted: number;
  commits: number;
  resumes: number;
}

export const loopFanout: Fanout = {
  publish(_key, text, peers) {
    for (const peer of peers) peer.send(text);
  },
};

export class Hub {
  readonly rooms = new Rooms();
  readonly batcher: WriteBatcher;
  readonly stats: HubStats = { visitsCommitted: 0, commits: 0, resumes: 0 };
  /** Called when this instance's socket count for a key changes (the cluster publishes it). */
  onLocalOnline: ((key: string) => void) | null = null;
  /** Called with a key's numbers whenever an update for it goes out (webhook online thresholds). */
  onUpdate: ((key: string, online: number, total: number) => void) | null = null;
  #draining = false;
  readonly #broadcaster: Broadcaster;
  readonly #deps: HubDeps;
  readonly #opts: HubOptions;

  constructor(deps: HubDeps, opts: HubOptions) {
    this.#deps = deps;
    this.#opts = opts;
    this.batcher = new WriteBatcher(deps.store, deps.clock, deps.log, {
      commitTimeoutMs: opts.commitTimeoutMs,
      onCommit: (_keys, visits) => {
        this.stats.commits++;
        this.stats.visitsCommitted += visits;
        const m = deps.metrics;
        if (m) {
          m.commits.inc();
          m.visits.inc(visits);
          m.batchSize.observe(visits);
        }
      },
    });
    this.#broadcaster = new Broadcaster(opts.broadcastIntervalMs, deps.clock, (key) => this.#emit(key));
  }

  get draining(): boolean {
    return this.#draining;
  }

  /** Registers a socket that has just been accepted for `key`. */
  open(peer: Peer, key: string, resumeToken: string | null): Session {
    if (this.#draining) {
      // Refused before it joins a room, so it is never counted online.
      peer.close(CloseCode.goingAway, new ShuttingDownError().message);
      return { key, message: () => {}, close: () => {} };
    }
    const room = this.rooms.getOrCreate(key);
    room.peers.add(peer);
    let closed = false;
    const bucket = new MessageBucket(this.#opts.messageBurst ?? 10, this.#opts.messagePerSec ?? 1, this.#deps.clock.now());
    const session: Session = {
      key,
      message: (data, byteLength) => {
        if (closed) return;
        if (!bucket.take(this.#deps.clock.now())) {
          this.#deps.metrics?.messageRateClosures.inc();
          peer.close(CloseCode.policy, "too many messages");
          return;
        }
        const parsed = parseClientMessage(data, byteLength);
        if (parsed.ok) peer.send(PONG);
        else peer.close(parsed.code, parsed.reason);
      },
      close: () => {
        if (closed) return;
        closed = true;
        room.peers.delete(peer);
        room.watchers.delete(peer);
        this.rooms.release(room);
        this.#broadcaster.touch(key);
        this.onLocalOnline?.(key);
      },
    };
    this.#broadcaster.touch(key);
    this.onLocalOnline?.(key);

    const claim = resumeToken === null ? null : verifyResumeToken(this.#deps.signer, key, resumeToken, this.#nowS());
    if (claim) {
      this.stats.resumes++;
      this.#knownTotal(room).then(
        () => !closed && this.#hello(peer, room, claim.visitor, resumeToken!),
        (err: unknown) => !closed && this.#refuse(peer, err),
      );
      return session;
    }
    this.batcher.add(key).then(
      (c) => {
        this.#committed(c);
        if (!closed) this.#hello(peer, room, c.visitor, this.#token(key, c.visitor));
      },
      (err: unknown) => !closed && this.#refuse(peer, err),
    );
    return session;
  }

  /** Current numbers for the JSON API. */
  async snapshot(key: string): Promise<{ key: string; total: number; online: number }> {
    const room = this.rooms.get(key);
    if (room?.totalKnown) return { key, total: room.total, online: room.online };
    const totals = await this.#deps.store.totals([key]);
    const total = Math.max(totals.get(key) ?? 0, room?.total ?? 0);
    return { key, total, online: room?.online ?? 0 };
  }

  /** A total learned elsewhere (another instance's commit, a resync). */
  observeTotal(key: string, total: number): void {
    const room = this.rooms.get(key);
    if (room && room.observeTotal(total)) this.#broadcaster.touch(key);
  }

  /**
   * An administrator set the total (reset or correction): the one case where
   * a total may go down. Watchers get a count flagged `reset` so they accept it.
   */
  resetTotal(key: string, total: number): void {
    const room = this.rooms.get(key);
    if (!room) return;
    room.total = total;
    room.totalKnown = true;
    room.resetPending = true;
    this.#broadcaster.touch(key);
  }

  /** Other instances' sockets for a key changed. */
  observeRemoteOnline(key: string, remote: number): void {
    const room = remote > 0 ? this.rooms.getOrCreate(key) : this.rooms.get(key);
    if (!room || room.remoteOnline === remote) return;
    room.remoteOnline = remote;
    this.#broadcaster.touch(key);
    this.rooms.release(room);
  }

  /**
   * Shutdown, step one: refuse new sockets and commit what is pending. The
   * caller bounds it with its deadline and then calls closeAll.
   */
  async drain(): Promise<void> {
    this.#draining = true;
    await this.batcher.flush();
    this.#broadcaster.flush();
  }

  /** Shutdown, step two: every socket gets `code` so clients reconnect elsewhere. */
  closeAll(code: number = CloseCode.goingAway, reason = "server shutting down"): number {
    this.#broadcaster.stop();
    let n = 0;
    for (const room of [...this.rooms.values()]) {
      for (const peer of [...room.peers]) {
        peer.close(code, reason);
        n++;
      }
    }
    return n;
  }

  #committed(c: Committed): void {
    const room = this.rooms.get(c.key);
    if (room?.observeTotal(c.total)) {
      room.unsentSince ??= this.#deps.clock.now();
      this.#broadcaster.touch(c.key);
    }
  }

  #knownTotal(room: Room): Promise<void> {
    if (room.totalKnown) return Promise.resolve();
    room.loading ??= this.#deps.store.totals([room.key]).then(
      (totals) => {
        room.loading = null;
        if (room.observeTotal(totals.get(room.key) ?? 0)) this.#broadcaster.touch(room.key);
      },
      (err: unknown) => {
        room.loading = null;
        throw err;
      },
    );
    return room.loading;
  }

  #hello(peer: Peer, room: Room, visitor: number, resume: string): void {
    room.watchers.add(peer);
    peer.watch?.();
    peer.send(
      encode({ type: "hello", key: room.key, total: room.total, online: room.online, visitor, resume, seq: room.seq }),
    );
  }

  #refusals = 0;

  #refuse(peer: Peer, err: unknown): void {
    const message = err instanceof Error ? err.message : String(err);
    this.#deps.metrics?.refusedVisits.inc();
    // One line per refusal would flood the log during an outage.
    if (this.#refusals++ % 1000 === 0) this.#deps.log.warn("visit refused", { err: message, refused_so_far: this.#refusals });
    peer.close(CloseCode.tryAgainLater, message.slice(0, 120));
  }

  #emit(key: string): void {
    const room = this.rooms.get(key);
    if (room?.totalKnown) this.onUpdate?.(key, room.online, room.total);
    if (!room || room.watchers.size === 0 || !room.totalKnown) return;
    room.seq++;
    const text = encode(
      room.resetPending
        ? { type: "count", key, total: room.total, online: room.online, seq: room.seq, reset: true }
        : { type: "count", key, total: room.total, online: room.online, seq: room.seq },
    );
    room.resetPending = false;
    this.#deps.fanout.publish(key, text, room.watchers);
    if (room.unsentSince !== null) {
      this.#deps.metrics?.broadcastLatency.observe((this.#deps.clock.now() - room.unsentSince) / 1000);
      room.unsentSince = null;
    }
  }

  #token(key: string, visitor: number): string {
    return issueResumeToken(this.#deps.signer, key, visitor, this.#nowS() + this.#opts.resumeTtlS);
  }

  #nowS(): number {
    return Math.floor(this.#deps.clock.now() / 1000);
  }
}
