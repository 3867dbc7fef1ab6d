import type { Committed } from "./batcher.ts";
import { KeyLimitError } from "./key-limit.ts";
import { CloseCode, encode } from "./protocol.ts";
import { MessageBucket } from "./rate-limiter.ts";
import { PageViews, RoomSession } from "./room-session.ts";
import { issueResumeToken, verifyResumeToken } from "./resume.ts";
import type { Clock, Logger, Peer, Signer } from "./ports.ts";
import { DayNumbers, type Today } from "./day-numbers.ts";
import type { DayCounts, Who } from "./visitors.ts";

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
  /** Today's (UTC) distinct visitors and filtered bots. */
  visitors: number;
  bots: number;
}

export type { Today } from "./day-numbers.ts";

/** Whoever drives rooms. Everything a room does to the world goes through here. */
export interface RoomHost {
  readonly clock: Clock;
  readonly signer: Signer;
  readonly log: Logger;
  readonly options: RoomOptions;
  readonly metrics?: RoomMetrics;
  /** Counts one visit (a bot: one bot); resolves once it is committed (group commit: core/batcher.ts). */
  commit(key: string, who?: Who): Promise<Committed>;
  /** The stored total of a key this room has not seen a commit for. */
  loadTotal(key: string): Promise<number>;
  /** The stored numbers of `day` for the key; absent where the store keeps no days. */
  loadToday?(key: string, day: string): Promise<DayCounts | undefined>;
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
  /** Bots' sockets: they watch the counts but are not online. */
  readonly bots = new Set<Peer>();
  /**
   * The peers that have had their hello: counts go only to these, so a joiner
   * hears nothing before its own visit has committed. Always within `peers` or `bots`.
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
  /** The latest day's visitors and bots this room has seen (commits, other instances, a load). */
  readonly #today: DayNumbers;
  #refusals = 0;
  /** Each page view's one open socket here: a resume of one still open takes it over (room-session.ts). */
  readonly #views = new PageViews();

  constructor(key: string, host: RoomHost) {
    this.key = key;
    this.host = host;
    this.#today = new DayNumbers(host.clock, host.loadToday && ((day) => host.loadToday!(key, day)));
  }

  get online(): number {
    return this.peers.size + this.remoteOnline;
  }

  /** Nobody here and nobody elsewhere: the host may forget the room. */
  get empty(): boolean {
    return this.peers.size === 0 && this.bots.size === 0 && this.remoteOnline === 0;
  }

  /** Today's visitors as far as this room knows (0 once the day it knows has passed). */
  get visitors(): number {
    return this.#today.current()?.visitors ?? 0;
  }

  /** Today's bots as far as this room knows. */
  get botsToday(): number {
    return this.#today.current()?.bots ?? 0;
  }

  /**
   * A socket accepted for this key: a new visit, or the same page view again
   * when `resume` is valid, taking over that page view's open socket if it
   * has one (one socket per page view; why takeover: room-session.ts).
   */
  admit(peer: Peer, resume: string | null, who?: Who): Session {
    const session = this.#join(peer, who?.bot === true);
    const claim = resume === null ? null : verifyResumeToken(this.host.signer, this.key, resume, this.#nowS());
    if (claim) {
      this.host.metrics?.resumes.inc();
      this.#views.claim(session, claim.visitor); // after the join: the room is never empty in between
      Promise.all([this.#knownTotal(), this.#today.known()]).then(
        () => !session.closed && this.#hello(peer, claim.visitor, resume!),
        (err: unknown) => !session.closed && this.#refuse(peer, err),
      );
      return session;
    }
    this.host.commit(this.key, who).then(
      (c) => {
        if (c.today) this.observeToday(c.today);
        this.observeTotal(c.total);
        if (session.closed) return;
        this.#views.own(session, c.visitor);
        this.#hello(peer, c.visitor, this.#token(c.visitor));
      },
      (err: unknown) => !session.closed && this.#refuse(peer, err),
    );
    return session;
  }

  /** A socket that already had its hello (a Durable Object woken from hibernation): watching again, not counted. */
  restore(peer: Peer, bot = false, visitor = 0): Session {
    const session = this.#join(peer, bot);
    this.watchers.add(peer);
    this.#views.own(session, visitor); // from its attachment: still its page view's one socket
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

  /** A day's numbers from anywhere: a later day replaces an earlier one; within a day they only grow. */
  observeToday(t: Today): void {
    if (this.#today.observe(t) && this.totalKnown) this.host.schedule(this);
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
    // One after the other: a request must never hold two of the pool's connections at once
    // (with PG_POOL_MAX=1 the second would wait for the first until the acquire timeout).
    await this.#knownTotal();
    await this.#today.known();
    return { key: this.key, total: this.total, online: this.online, visitors: this.visitors, bots: this.botsToday };
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
    const count = { type: "count" as const, key: this.key, total: this.total, online: this.online, visitors: this.visitors, seq: this.seq };
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
    const peers = [...this.peers, ...this.bots];
    for (const peer of peers) peer.close(code, reason);
    return peers.length;
  }

  /** Called by a session when its socket has gone. */
  leave(peer: Peer, session?: RoomSession): void {
    if (session) this.#views.release(session);
    this.peers.delete(peer);
    this.bots.delete(peer);
    this.watchers.delete(peer);
    this.host.schedule(this);
    this.host.socketsChanged(this);
  }

  #join(peer: Peer, bot: boolean): RoomSession {
    (bot ? this.bots : this.peers).add(peer);
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
    const hello = { type: "hello" as const, key: this.key, total: this.total, online: this.online, visitors: this.visitors, visitor, resume, seq: this.seq };
    peer.send(encode(hello));
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
