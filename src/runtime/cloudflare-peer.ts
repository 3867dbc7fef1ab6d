import type * as CF from "@cloudflare/workers-types/index.ts";
import type { Peer } from "../core/ports.ts";

/**
 * Per-socket state kept with serializeAttachment, so it survives hibernation:
 * the key (≤ 256 bytes of UTF-8) and the visitor number, well inside the
 * 2,048 bytes the platform allows per socket. visitor 0: no hello yet.
 */
export interface SocketState {
  key: string;
  visitor: number;
  /** A bot's socket: it watches, is not online, and has visitor 0 even after its hello. */
  bot?: true;
}

/** The exact frame the runtime answers without waking the object. */
export const PING_FRAME = '{"type":"ping"}';
/** Sequence numbers are reserved in blocks, so a woken object never reuses one a client has seen. */
export const SEQ_BLOCK = 1000;

/** A hibernatable socket as core sees it; its tag is the client address, for the per-address cap. */
export class DurablePeer implements Peer {
  readonly ws: CF.WebSocket;
  readonly key: string;
  readonly bot: boolean;
  constructor(ws: CF.WebSocket, key: string, bot = false) {
    this.ws = ws;
    this.key = key;
    this.bot = bot;
  }
  send(text: string): void {
    try {
      this.ws.send(text);
    } catch {
      // closed between the listing and the send
    }
  }
  close(code: number, reason: string): void {
    try {
      this.ws.close(code, reason);
    } catch {
      // already closed
    }
  }
  greeted(visitor: number): void {
    this.ws.serializeAttachment((this.bot ? { key: this.key, visitor, bot: true } : { key: this.key, visitor }) satisfies SocketState);
  }
}
