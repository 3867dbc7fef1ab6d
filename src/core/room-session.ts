import { CloseCode, parseClientMessage, PONG } from "./protocol.ts";
import type { MessageBucket } from "./rate-limiter.ts";
import type { Peer } from "./ports.ts";
import type { Room, Session } from "./room.ts";

// A socket's handle on its room (room.ts): its message budget, pings, and leaving.

/** One small object per socket, not a bag of closures: it is most of what a socket costs us. */
export class RoomSession implements Session {
  readonly #room: Room;
  readonly #peer: Peer;
  readonly #bucket: MessageBucket;
  closed = false;

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

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.#room.leave(this.#peer);
  }
}

