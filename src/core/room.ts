import type { Committed } from "./batcher.ts";
import { KeyLimitError } from "./key-limit.ts";
import { CloseCode, encode } from "./protocol.ts";
import { MessageBucket } from "./rate-limiter.ts";
import { issueResumeToken, verifyResumeToken } from "./resume.ts";
import { RoomSession } from "./room-session.ts";
import type { Clock, Logger, Peer, Signer } from "./ports.ts";

// One key's room: every counting rule in one place (DESIGN.md §4). A socket
// is admitted (a new visit, group-committed, or a reconnect presenting its
// resume token), gets its hello once the visit has committed, and from then on
// watches the key's coalesced counts. Totals only move forward, except when an
// administrator resets one. Two hosts drive rooms: the in-process Hub (many
// keys, Node/Bun/Deno) and a Durable Object (one key, Workers). A host
// supplies the I/O (commit, load, schedule, publish); the room decides.

export interface RoomOptions {
  resumeTtlS: number;
  /** Per-socket message budget: `messageBurst` at once, refilled at `messagePerSec`; over it, close 1008. */
  messageBurst: number;
  messagePerSec: number;
}

/** What a room counts in (the hub's metrics; absent on Workers). */
export interface RoomMetrics {
  broadcastLatency: { observe(seconds: number): void };
  refusedVisits: { inc(): void };
  messageRateClosures: { inc(): void };
  resumes: { inc(): void };
}

export interface Snapshot {
  key: string;
  total: number;
  online: number;
}

/** Whoever drives rooms. Everything a room does to the world goes through here. */
export interface RoomHost {
  readonly clock: Clock;
  readonly signer: Signer;
  readonly log: Logger;
  readonly options: RoomOptions;
  readonly metrics?: RoomMetrics;
  /** Counts one visit; resolves once it is committed (group commit: core/batcher.ts). */
  commit(key: string): Promise<Committed>;
  /** The stored total of a key this room has not seen a commit for. */
  loadTotal(key: string): Promise<number>;
  /** The room has news for its watchers: call `room.emit()` within the coalescing interval. */
  schedule(room: Room): void;
  /** Writes one encoded message to every watcher of the room. */
  publish(room: Room, text: string): void;
  /** The room's own sockets changed (presence across instances, releasing empty rooms). */
  socketsChanged(room: Room): void;
  /** An update went out with these numbers (webhook online thresholds). */
  updated(room: Room): void;
}

/** What a runtime adapter holds per socket. */
export interface Session {
  readonly key: string;
  /** `data` is a text frame's text, or null for a binary frame. */
  message(data: string | null, byteLength: number): void;
  close(): void;
}

export class Room {
  readonly key: string;
  readonly host: RoomHost;
  /** This instance's open sockets for the key: online counts these. */
  readonly peers = new Set<Peer>();
  /**
   * The peers that have had their hello: counts go only to these, so a joiner
   * hears nothing before its own visit has committed. Always within `peers`.
   */
  readonly watchers = new Set<Peer>();
  /** Highest committed total seen; a client is never shown a lower one. */
  total = 0;
  totalKnown = false;
  /** Broadcast sequence: only grows while the room exists (a host may start it higher). */
  seq = 0;
  /** Sockets other instances hold for this key (presence across instances). */
  remoteOnline = 0;
  /** When the oldest committed-but-not-yet-broadcast total arrived (broadcast latency). */
  #unsentSince: number | null = null;
  /** An administrator set the total: the next count carries `reset`. */
  #resetPending = false;
  /** One load of the stored total shared by every resume and snapshot that needs it. */
  #loading: Promise<void> | null = null;
  #refusals = 0;
  /** Each open session's visitor (page view): a resume of one that is still open takes it over. */
  readonly #byVisitor = new Map<number, RoomSession>();

  constructor(key: string, host: RoomHost) {
    this.key = key;
    this.host = host;
  }

  get online(): number {
    return this.peers.size + this.remoteOnline;
  }

  /** Nobody here and nobody elsewhere: the host may forget the room. */
  get empty(): boolean {
    return this.peers.size === 0 && this.remoteOnline === 0;
  }

  /**
   * A socket accepted for this key: a new visit, or the same page view again
   * when `resume` is valid. One page view holds one socket (or stream) at a
   * time: a resume whose visitor still has one open here takes over, and the
   * old one is closed with 1008 "resumed elsewhere" and leaves online at once.
   * Takeover rather than refusal, because the common case is honest: a page
   * reconnecting (a network change, a sleeping laptop) while the server still
   * holds its old, half-open socket, which nothing has told us is dead; a
   * refusal would lock that page out until the heartbeat cut the corpse. A
   * token copied onto many sockets still holds one place online.
   */
  admit(peer: Peer, resume: string | null): Session {
    const session = this.#join(peer);
    const claim = resume === null ? null : verifyResumeToken(this.host.signer, this.key, resume, this.#nowS());
    if (claim) {
      this.host.metrics?.resumes.inc();
      // After the join, so the room is never empty in between (a host may forget an empty room).
      this.#byVisitor.get(claim.visitor)?.takeOver();
      this.#own(session, claim.visitor);
      this.#knownTotal().then(
        () => !session.closed && this.#hello(peer, claim.visitor, resume!),
        (err: unknown) => !session.closed && this.#refuse(peer, err),
      );
      return session;
    }
    this.host.commit(this.key).then(
      (c) => {
        this.observeTotal(c.total);
        if (session.closed) return;
        this.#own(session, c.visitor);
        this.#hello(peer, c.visitor, this.#token(c.visitor));
      },
      (err: unknown) => !session.closed && this.#refuse(peer, err),
    );
    return session;
  }

  /**
   * A socket that already had its hello (a Durable Object woken from
   * hibernation, `visitor` from its attachment): watching again, not counted,
   * and still the one socket of its page view.
   */
  restore(peer: Peer, visitor?: number): Session {
    const session = this.#join(peer);
    this.watchers.add(peer);
    if (visitor) this.#own(session, visitor);
    return session;
  }

  /** A committed total from anywhere (this room's commit, another instance, a resync). Forward only. */
  observeTotal(total: number): void {
    const known = this.totalKnown;
    this.totalKnown = true;
    if (total > this.total) this.total = total;
    else if (known) return;
    this.#unsentSince ??= this.host.clock.now();
    this.host.schedule(this);
  }

  /** An administrator set the total: the one time it may go down; watchers get a count flagged `reset`. */
  reset(total: number): void {
    this.total = total;
    this.totalKnown = true;
    this.#resetPending = true;
    this.host.schedule(this);
  }

  /** Other instances' sockets for the key. */
  setRemoteOnline(n: number): void {
    if (this.remoteOnline === n) return;
    this.remoteOnline = n;
    this.host.schedule(this);
  }

  /** The numbers for the JSON API and the badge. */
  async snapshot(): Promise<Snapshot> {
    await this.#knownTotal();
    return { key: this.key, total: this.total, online: this.online };
  }

  /** The coalesced broadcast: one encoded count with the latest numbers to every watcher. */
  emit(): void {
    if (!this.totalKnown) {
      // Online changed before the total was known (a close woke a Durable Object): learn it; observeTotal reschedules.
      if (this.watchers.size > 0) this.#knownTotal().catch((err: unknown) => this.host.log.warn("count not sent: total unavailable", { err }));
      return;
    }
    this.host.updated(this);
    if (this.watchers.size === 0) return;
    this.seq++;
    const count = { type: "count" as const, key: this.key, total: this.total, online: this.online, seq: this.seq };
    const text = encode(this.#resetPending ? { ...count, reset: true } : count);
    this.#resetPending = false;
    this.host.publish(this, text);
    if (this.#unsentSince !== null) {
      this.host.metrics?.broadcastLatency.observe((this.host.clock.now() - this.#unsentSince) / 1000);
      this.#unsentSince = null;
    }
  }

  /** Closes every socket (shutdown); returns how many. */
  closeAll(code: number, reason: string): number {
    const peers = [...this.peers];
    for (const peer of peers) peer.close(code, reason);
    return peers.length;
  }

  /** Called by a session when its socket has gone. */
  leave(peer: Peer, session?: RoomSession): void {
    if (session?.visitor != null && this.#byVisitor.get(session.visitor) === session) this.#byVisitor.delete(session.visitor);
    this.peers.delete(peer);
    this.watchers.delete(peer);
    this.host.schedule(this);
    this.host.socketsChanged(this);
  }

  /** The session is its visitor's one socket here (the map holds open sessions only: leave removes them). */
  #own(session: RoomSession, visitor: number): void {
    session.visitor = visitor;
    this.#byVisitor.set(visitor, session);
  }

  #join(peer: Peer): RoomSession {
    this.peers.add(peer);
    const { messageBurst, messagePerSec } = this.host.options;
    const session = new RoomSession(this, peer, new MessageBucket(messageBurst, messagePerSec, this.host.clock.now()));
    this.host.schedule(this);
    this.host.socketsChanged(this);
    return session;
  }

  #knownTotal(): Promise<void> {
    if (this.totalKnown) return Promise.resolve();
    this.#loading ??= this.host.loadTotal(this.key).then(
      (total) => {
        this.#loading = null;
        this.observeTotal(total);
      },
      (err: unknown) => {
        this.#loading = null;
        throw err;
      },
    );
    return this.#loading;
  }

  #hello(peer: Peer, visitor: number, resume: string): void {
    this.watchers.add(peer);
    peer.greeted?.(visitor, resume);
    peer.send(encode({ type: "hello", key: this.key, total: this.total, online: this.online, visitor, resume, seq: this.seq }));
  }

  #refuse(peer: Peer, err: unknown): void {
    const message = err instanceof Error ? err.message : String(err);
    this.host.metrics?.refusedVisits.inc();
    // One line per refusal would flood the log during an outage.
    if (this.#refusals++ % 1000 === 0) this.host.log.warn("visit refused", { key: this.key, err: message, refused_here: this.#refusals });
    // Past MAX_KEYS is a policy (trying again will not help), anything else a failure to wait out.
    peer.close(err instanceof KeyLimitError ? CloseCode.policy : CloseCode.tryAgainLater, message.slice(0, 120));
  }

  #token(visitor: number): string {
    return issueResumeToken(this.host.signer, this.key, visitor, this.#nowS() + this.host.options.resumeTtlS);
  }

  #nowS(): number {
    return Math.floor(this.host.clock.now() / 1000);
  }
}
