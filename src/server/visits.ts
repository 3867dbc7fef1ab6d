import type { Hub } from "../core/hub.ts";
import type { Peer } from "../core/ports.ts";
import { CloseCode } from "../core/protocol.ts";
import type { Session } from "../core/room.ts";
import type { SocketCaps } from "../core/socket-caps.ts";
import type { Visit } from "../routes/admission.ts";

// The second half of a visit's path on Node, Bun and Deno: the runtime has
// upgraded an admitted handshake and hands over the open socket. It takes its
// socket-cap slot (upgrades in flight can race past admission's check) and
// joins its key's room; the slot is released when the socket closes.

/** Binds an open socket to the engine; the runtime calls the returned session's message/close. */
export type BindVisit = (visit: Visit, peer: Peer) => Session;

class CappedSession implements Session {
  readonly #inner: Session;
  readonly #caps: SocketCaps;
  readonly #address: string;
  #closed = false;
  constructor(inner: Session, caps: SocketCaps, address: string) {
    this.#inner = inner;
    this.#caps = caps;
    this.#address = address;
  }
  get key(): string {
    return this.#inner.key;
  }
  message(data: string | null, byteLength: number): void {
    this.#inner.message(data, byteLength);
  }
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#inner.close();
    this.#caps.release(this.#address);
  }
}

const nothing = (key: string): Session => ({ key, message: () => {}, close: () => {} });

export function bindVisits(hub: Hub, caps: SocketCaps): BindVisit {
  return (visit, peer) => {
    if (!caps.take(visit.address)) {
      peer.close(CloseCode.tryAgainLater, "server is at its socket limit");
      return nothing(visit.key);
    }
    return new CappedSession(hub.admit(peer, visit.key, visit.resume, visit.who), caps, visit.address);
  };
}
