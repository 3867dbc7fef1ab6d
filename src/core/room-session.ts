import { CloseCode, parseClientMessage, PONG } from "./protocol.ts";
import type { MessageBucket } from "./rate-limiter.ts";
import type { Peer } from "./ports.ts";
import type { Room, Session } from "./room.ts";

// A socket's handle on its room (room.ts): its message budget, pings, and
// leaving; and which page view it carries, since a page view holds one socket
// (or event stream) at a time in a room.
//
// A resume whose page view still has a connection open here takes over: the
// old one is closed with 1008 "resumed elsewhere" and leaves online at once,
// the new one is admitted without a visit. Takeover rather than refusal,
// because the common case is honest: a page reconnecting (a network change, a
// sleeping laptop) while the server still holds its old, half-open socket,
// which nothing has told us is dead; a refusal would lock that page out until
// the heartbeat cut the corpse. A token copied onto many sockets holds one
// place online, and each copy closes the one before.

/** The close a socket gets when its page view's resume token opened another. */
export const RESUMED_ELSEWHERE = { code: CloseCode.policy, reason: "resumed elsewhere" } as const;

/** One small object per socket, not a bag of closures: it is most of what a socket costs us. */
export class RoomSession implements Session {
  readonly #room: Room;
  readonly #peer: Peer;
  readonly #bucket: MessageBucket;
  closed = false;
  /** The page view this socket carries, once known (its resume token's, or its committed visit's); 0: none. */
  visitor = 0;

  constructor(room: Room, peer: Peer, bucket: MessageBucket) {
    this.#room = room;
    this.#peer = peer;
    this.#bucket = bucket;
  }

  get key(): string {
    return this.#room.key;
  }

  message(data: string | null, byteLength: number): void {
    if (this.closed) return;
    const host = this.#room.host;
    if (!this.#bucket.take(host.clock.now())) {
      host.metrics?.messageRateClosures.inc();
      this.#peer.close(CloseCode.policy, "too many messages");
      return;
    }
    const parsed = parseClientMessage(data, byteLength);
    if (parsed.ok) this.#peer.send(PONG);
    else this.#peer.close(parsed.code, parsed.reason);
  }

  /**
   * Another socket resumed this page view: this one is closed and leaves the
   * room now, not when its close handshake ends (a half-open socket's never
   * does); the adapter's own close later finds it closed.
   */
  takeOver(): void {
    if (this.closed) return;
    this.#peer.close(RESUMED_ELSEWHERE.code, RESUMED_ELSEWHERE.reason);
    this.close();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.#room.leave(this.#peer, this);
  }
}

/** Each page view's one open session in a room. Holds open sessions only: a session leaving is released. */
export class PageViews {
  readonly #open = new Map<number, RoomSession>();

  /** `session` resumed `visitor`'s page view: the one holding it is taken over. */
  claim(session: RoomSession, visitor: number): void {
    const holder = this.#open.get(visitor);
    if (holder !== session) holder?.takeOver();
    this.own(session, visitor);
  }

  /** `session` carries `visitor`'s page view (0, a bot's or an unknown one: nothing to hold). */
  own(session: RoomSession, visitor: number): void {
    if (visitor <= 0 || session.closed) return;
    session.visitor = visitor;
    this.#open.set(visitor, session);
  }

  release(session: RoomSession): void {
    if (session.visitor > 0 && this.#open.get(session.visitor) === session) this.#open.delete(session.visitor);
  }

  get size(): number {
    return this.#open.size;
  }
}
