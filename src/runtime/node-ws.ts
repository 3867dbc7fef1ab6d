import { STATUS_CODES, type IncomingMessage, type Server } from "node:http";
import type { Duplex } from "node:stream";
import { WebSocketServer, type RawData, type WebSocket } from "ws";
import type { HeadcountApp } from "../app.ts";
import type { Fanout, Peer } from "../core/ports.ts";
import { CloseCode, MAX_CLIENT_MESSAGE_BYTES } from "../core/protocol.ts";
import type { Session } from "../core/room.ts";
import { isVisitUpgrade, type Admission, type UpgradeRequest, type Visit } from "../routes/admission.ts";
import type { BindVisit } from "../server/visits.ts";
import { validHost } from "./host-header.ts";
import { PingNonces } from "./ping-nonces.ts";

// Node's WebSocket adapter over `ws` (https://github.com/websockets/ws): a
// visit's handshake goes to the app's one decision (app.admit), an accepted
// one is upgraded and bound straight to the engine with no per-event wrapper
// objects. Any other request that node:http reports as an upgrade is answered
// by the app like a plain request. See README "Why not @hono/node-ws".

export interface NodeSocketOptions {
  /** A socket that answers no ping for this long is terminated (and leaves online). */
  heartbeatTimeoutMs: number;
  /** Unsent bytes a socket may hold; past it the reader is too slow and is cut. */
  maxBufferedBytes: number;
}

function header(incoming: IncomingMessage, name: string): string | undefined {
  const v = incoming.headers[name];
  return Array.isArray(v) ? v.join(", ") : v;
}

/** The handshake as admission reads it, straight from what node:http parsed: no Request per visitor. */
function upgradeRequest(incoming: IncomingMessage): UpgradeRequest {
  return { method: incoming.method ?? "GET", url: incoming.url ?? "/", header: (name) => header(incoming, name) };
}

async function writeResponse(socket: Duplex, res: Response): Promise<void> {
  const body = Buffer.from(await res.arrayBuffer());
  const lines = [`HTTP/1.1 ${res.status} ${STATUS_CODES[res.status] ?? ""}`];
  res.headers.forEach((value, name) => {
    if (name !== "content-length" && name !== "connection") lines.push(`${name}: ${value}`);
  });
  lines.push(`content-length: ${body.byteLength}`, "connection: close", "", "");
  if (!socket.destroyed) socket.end(Buffer.concat([Buffer.from(lines.join("\r\n")), body]));
}

/** An unmasked, final text frame (RFC 6455 §5.2): what a server writes. */
export function textFrame(text: string): Buffer {
  const payload = Buffer.from(text);
  const n = payload.byteLength;
  const head = n < 126 ? 2 : n < 65536 ? 4 : 10;
  const frame = Buffer.allocUnsafe(head + n);
  frame[0] = 0x81; // FIN + text
  if (n < 126) frame[1] = n;
  else if (n < 65536) {
    frame[1] = 126;
    frame.writeUInt16BE(n, 2);
  } else {
    frame[1] = 127;
    frame.writeBigUInt64BE(BigInt(n), 2);
  }
  payload.copy(frame, head);
  return frame;
}

/**
 * A socket as core sees it: one small object per socket. Everything it sends
 * is a whole frame written straight to the TCP socket (ws writes a frame
 * synchronously when compression is off, so ours never interleave with its
 * pings and closes), after checking that the client is still reading.
 */
class NodePeer implements Peer {
  readonly #ws: WebSocket;
  readonly #socket: Duplex;
  readonly #maxBuffered: number;
  constructor(ws: WebSocket, maxBuffered: number) {
    this.#ws = ws;
    this.#socket = (ws as unknown as { _socket: Duplex })._socket;
    this.#maxBuffered = maxBuffered;
  }
  send(text: string): void {
    this.sendFrame(textFrame(text));
  }
  sendFrame(frame: Buffer): void {
    if (this.#ws.readyState !== 1) return;
    // A reader that lets this much pile up is not reading: cut it rather than buffer without bound.
    if (this.#socket.writableLength > this.#maxBuffered) {
      this.#ws.close(CloseCode.policy, "too slow: messages not read");
      this.#ws.terminate();
      return;
    }
    this.#socket.write(frame);
  }
  close(code: number, reason: string): void {
    if (this.#ws.readyState <= 1) this.#ws.close(code, reason);
  }
}

/**
 * The update is framed once and the same Buffer written to every socket (55% of a burst went to re-encoding:
 * bench/NOTES.md); a watcher that is no socket here (an event stream, routes/event-stream.ts) gets the text.
 */
export const nodeFanout: Fanout = {
  publish(_key, text, peers) {
    const frame = textFrame(text);
    for (const peer of peers) {
      if (peer instanceof NodePeer) peer.sendFrame(frame);
      else peer.send(text);
    }
  },
};

export function createNodeSockets(opts: NodeSocketOptions) {
  const wss = new WebSocketServer({ noServer: true, clientTracking: false, perMessageDeflate: false, maxPayload: MAX_CLIENT_MESSAGE_BYTES });
  // Each open socket and whether it has answered a ping since the last sweep.
  const open = new Map<WebSocket, boolean>();

  // One timer for all sockets: every half timeout, terminate those that did not
  // answer the last ping and ping the rest. Only a pong that echoes this
  // round's (or the last round's) random payload counts: it comes back behind
  // everything we sent, so it proves the client reads, not just writes (an
  // unsolicited pong, which RFC 6455 §5.5.3 allows, proves nothing).
  const nonces = new PingNonces();
  const sweep = setInterval(() => {
    const nonce = nonces.next();
    for (const [ws, alive] of open) {
      if (!alive) ws.terminate();
      else {
        open.set(ws, false);
        ws.ping(nonce);
      }
    }
  }, Math.max(50, Math.floor(opts.heartbeatTimeoutMs / 2)));
  sweep.unref();

  const bindSocket = (ws: WebSocket, visit: Visit, bind: BindVisit): void => {
    open.set(ws, true);
    const session: Session = bind(visit, new NodePeer(ws, opts.maxBufferedBytes));
    ws.on("message", (data: RawData, isBinary) => {
      const bytes = Array.isArray(data) ? data.reduce((n, b) => n + b.byteLength, 0) : data.byteLength;
      session.message(isBinary ? null : data.toString(), bytes);
    });
    ws.on("pong", (data: Buffer) => {
      if (nonces.answers(data)) open.set(ws, true);
    });
    ws.on("close", () => {
      open.delete(ws);
      session.close();
    });
    // Protocol errors (bad frames, invalid UTF-8) are answered by ws with a close; nothing to add.
    ws.on("error", () => {});
  };

  /** Handles node:http's upgrade events: a visit goes to app.admit, anything else to the app like a plain request. */
  const attach = (server: Server, app: HeadcountApp, bind: BindVisit): void => {
    server.on("upgrade", (incoming: IncomingMessage, socket: Duplex, head: Buffer) => {
      socket.on("error", () => {});
      const refuse = (status: number, message: string) => void writeResponse(socket, Response.json({ error: "bad_request", message }, { status }));
      // RFC 6455 §4.2.1: the opening handshake is HTTP/1.1 or later.
      if (incoming.httpVersionMajor === 1 && incoming.httpVersionMinor < 1) return refuse(400, "WebSocket needs HTTP/1.1");
      if (!incoming.headers.host || !validHost(incoming.headers.host)) return refuse(400, "the Host header must be host[:port]");
      if (!isVisitUpgrade(incoming.url ?? "/", header(incoming, "upgrade"))) {
        let request: Request;
        try {
          request = new Request(`http://${incoming.headers.host}${incoming.url ?? "/"}`, { method: incoming.method, headers: incoming.headers as Record<string, string> });
        } catch {
          return refuse(400, "malformed request");
        }
        Promise.resolve(app.http.fetch(request, { incoming })).then(
          (res) => writeResponse(socket, res),
          () => writeResponse(socket, new Response(null, { status: 500 })),
        );
        return;
      }
      const upgrade = (decision: Admission) => {
        if (decision.refused) return void writeResponse(socket, decision.refused);
        if (socket.destroyed) return;
        wss.handleUpgrade(incoming, socket, head, (ws) => bindSocket(ws, decision.visit, bind));
      };
      // Decided at once, but for a new key at MAX_KEYS (one lookup).
      const decided = app.admit(upgradeRequest(incoming), incoming.socket.remoteAddress);
      if (decided instanceof Promise) decided.then(upgrade, () => writeResponse(socket, new Response(null, { status: 503 })));
      else upgrade(decided);
    });
  };

  /** Resolves when every accepted socket has closed. */
  const drained = async (): Promise<void> => {
    while (open.size > 0) await new Promise((r) => setTimeout(r, 20));
  };

  return { attach, drained, stop: () => clearInterval(sweep) };
}
