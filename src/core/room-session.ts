import { CloseCode, parseClientMessage, PONG } from "./protocol.ts";
import type { MessageBucket } from "./rate-limiter.ts";
import type { Peer } from "./ports.ts";
import type { Room, Session } from "./room.ts";

/** The close a socket gets when its page view's resume token opened another (room.ts admit). */
export const RESUMED_ELSEWHERE = { code: CloseCode.policy, reason: "resumed elsewhere" } as const;

/** One small object per socket, not a bag of closures: it is most of what a socket costs us. */
export class RoomSession implements Session {
  readonly #room: Room;
  readonly #peer: Peer;
  readonly #bucket: MessageBucket;
  closed = false;
  /** The page view this socket carries, once known (its resume token's, or its committed visit's). */
  visitor: number | null = null;

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
