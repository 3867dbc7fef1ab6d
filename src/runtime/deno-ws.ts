/// <reference path="./deno-globals.d.ts" />
import type { HeadcountApp } from "../app.ts";
import type { Peer } from "../core/ports.ts";
import { CloseCode, MAX_CLIENT_MESSAGE_BYTES } from "../core/protocol.ts";
import type { Session } from "../core/room.ts";
import { isVisitUpgrade, type Admission, type Visit } from "../routes/admission.ts";
import type { BindVisit } from "../server/visits.ts";
import { badHostResponse, validHost } from "./host-header.ts";

// Deno's WebSocket adapter (https://docs.deno.com/api/deno/~/Deno.upgradeWebSocket):
// a visit's handshake goes to the app's one decision (app.admit); an accepted
// one is upgraded and bound straight to the engine when it opens.
//
// What Deno's WebSocket (fastwebsockets inside) leaves unbounded, measured in
// test/hostile-http.test.ts and test/slow-readers.test.ts (README "Deno"):
// - No frame-size limit can be set: a message reaches the room, which closes
//   it with 1009, only once Deno holds it whole. A frame is refused at 64 MiB
//   (the connection dropped, no close frame); a fragmented message is
//   collected with no limit at all.
// - bufferedAmount is real (it counts sends the kernel has not taken), so a
//   slow reader is found and stops getting sends; but close() queues the close
//   frame behind the sends it never reads, and there is no terminate(): the
//   socket stays CLOSING and connected (holding its socket-cap slot) until the
//   client goes away.
// - idleTimeout's timer restarts on any text, binary or pong frame the client
//   sends, so the heartbeat proves the client is there, not that it reads.

const encoder = new TextEncoder();

/**
 * The UTF-8 length of a text frame, exact where it decides anything: a string
 * of n UTF-16 units is n to 3n bytes, so only lengths between a third of the
 * limit and the limit need encoding.
 */
function textBytes(text: string): number {
  const n = text.length;
  if (n * 3 <= MAX_CLIENT_MESSAGE_BYTES || n > MAX_CLIENT_MESSAGE_BYTES) return n;
  return encoder.encode(text).byteLength;
}

export interface DenoSocketOptions {
  /** A socket that answers no ping for this long is closed (and leaves online). */
  heartbeatTimeoutMs: number;
  /** Unsent bytes a socket may hold; past it the reader is too slow and is cut. */
  maxBufferedBytes: number;
}

class DenoPeer implements Peer {
  readonly #ws: WebSocket;
  readonly #maxBuffered: number;
  constructor(ws: WebSocket, maxBuffered: number) {
    this.#ws = ws;
    this.#maxBuffered = maxBuffered;
  }
  send(text: string): void {
    if (this.#ws.readyState !== WebSocket.OPEN) return;
    // Past the bound the reader is not reading: no more sends (the socket stays until its client leaves: see above).
    if (this.#ws.bufferedAmount > this.#maxBuffered) {
      this.#ws.close(CloseCode.policy, "too slow: messages not read");
      return;
    }
    this.#ws.send(text);
  }
  close(code: number, reason: string): void {
    // Deno lets a server socket send any close code (a browser's only 1000 and 3000-4999).
    if (this.#ws.readyState <= WebSocket.OPEN) this.#ws.close(code, reason);
  }
}

export function createDenoSockets(opts: DenoSocketOptions) {
  // Deno pings a socket quiet for half of idleTimeout and closes it if no pong comes back in the other half.
  const idleTimeout = Math.max(1, Math.ceil(opts.heartbeatTimeoutMs / 1000));
  const open = new Set<WebSocket>();

  const bindSocket = (ws: WebSocket, visit: Visit, bind: BindVisit): void => {
    let session: Session | null = null;
    ws.binaryType = "arraybuffer";
    ws.onopen = () => {
      open.add(ws);
      session = bind(visit, new DenoPeer(ws, opts.maxBufferedBytes));
    };
    ws.onmessage = (event: MessageEvent<string | ArrayBuffer>) => {
      const data = event.data;
      if (typeof data === "string") session?.message(data, textBytes(data));
      else session?.message(null, data.byteLength);
    };
    ws.onclose = () => {
      open.delete(ws);
      session?.close();
    };
    // A failed socket also fires close; nothing to add.
    ws.onerror = () => {};
  };

  /** Deno.serve's handler: a visit's handshake to app.admit and Deno's upgrade, everything else to the app. */
  const handler = (app: HeadcountApp, bind: BindVisit) => (req: Request, info: Deno.ServeHandlerInfo): Response | Promise<Response> => {
    if (!validHost(req.headers.get("host"))) return badHostResponse();
    if (!isVisitUpgrade(req.url, req.headers.get("upgrade"))) return app.http.fetch(req, info);
    // Decided at once, but for a new key at MAX_KEYS (one lookup).
    const decided = app.admit({ method: req.method, url: req.url, header: (n) => req.headers.get(n) }, info.remoteAddr.hostname);
    return decided instanceof Promise ? decided.then((d) => upgrade(req, d, bind)) : upgrade(req, decided, bind);
  };

  const upgrade = (req: Request, decision: Admission, bind: BindVisit): Response => {
    if (decision.refused) return decision.refused;
    let upgraded: { socket: WebSocket; response: Response };
    try {
      upgraded = Deno.upgradeWebSocket(req, { idleTimeout });
    } catch {
      return Response.json({ error: "upgrade_failed", message: "not a valid WebSocket handshake" }, { status: 400 });
    }
    bindSocket(upgraded.socket, decision.visit, bind);
    return upgraded.response;
  };

  return {
    handler,
    /** Resolves when every accepted socket has closed. */
    drained: async (): Promise<void> => {
      while (open.size > 0) await new Promise((r) => setTimeout(r, 20));
    },
  };
}
