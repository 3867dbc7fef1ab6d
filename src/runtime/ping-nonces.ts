import { randomBytes, timingSafeEqual } from "node:crypto";

/**
 * The payloads of a heartbeat's pings (Node and Bun). Each round pings every
 * socket with a fresh random 8 bytes; a pong counts only if it echoes this
 * round's or the previous round's, which a client can know only by reading
 * our ping, so a heartbeat cannot be kept alive by a client that writes
 * unsolicited pongs and never reads.
 */
export class PingNonces {
  #current: Buffer = randomBytes(8);
  #previous: Buffer = this.#current;

  /** Starts a round: the payload to ping every socket with. */
  next(): Buffer {
    this.#previous = this.#current;
    this.#current = randomBytes(8);
    return this.#current;
  }

  answers(data: Uint8Array): boolean {
    return data.byteLength === 8 && (timingSafeEqual(data, this.#current) || timingSafeEqual(data, this.#previous));
  }
}
