import { STATUS_CODES, type IncomingMessage, type Server } from "node:http";
import type { Duplex } from "node:stream";
import { WebSocketServer, type WebSocket, type RawData } from "ws";
import type { Context } from "hono";
import type { UpgradeSocket } from "../counters.ts";
import type { Session } from "../core/hub.ts";
import type { Fanout, Peer } from "../core/ports.ts";
import { MAX_CLIENT_MESSAGE_BYTES } from "../core/protocol.ts";
import { upgradeRequest } from "./node-upgrade-request.ts";

// A thin WebSocket adapter for Node over `ws`: the upgrade request goes
// through the Hono app (so validation, 400 and 426 live in one place), and an
// accepted socket is bound straight to a core Session, with no per-event
// wrapper objects. See README "Why not @hono/node-ws".

/** What the Hono app sees as `c.env` for an upgrade request. */
interface UpgradeEnv {
  incoming: IncomingMessage;
  socket: Duplex;
  head: Buffer;
  upgraded: boolean;
}

type Fetch = (request: Request, env: UpgradeEnv) => Response | Promise<Response>;

function byteLength(data: RawData): number {
  if (Array.isArray(data)) return data.reduce((n, b) => n + b.byteLength, 0);
  return data.byteLength;
}

async function writeRefusal(socket: Duplex, res: Response): Promise<void> {
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
 * A socket as core sees it: one small object per socket (a class, not an
 * object of closures). Everything it sends is a whole frame written straight
 * to the TCP socket: ws writes a frame synchronously when compression is off
 * (perMessageDeflate: false below), so one of ours never interleaves with one
 * of ws's own (pings, closes).
 */
class NodePeer implements Peer {
  readonly #ws: WebSocket;
  readonly #socket: Duplex;
  constructor(ws: WebSocket) {
    this.#ws = ws;
    this.#socket = (ws as unknown as { _socket: Duplex })._socket;
  }
  send(text: string): void {
    this.sendFrame(textFrame(text));
  }
  sendFrame(frame: Buffer): void {
    if (this.#ws.readyState === 1) this.#socket.write(frame);
  }
  close(code: number, reason: string): void {
    if (this.#ws.readyState <= 1) this.#ws.close(code, reason);
  }
}

/**
 * Node fan-out: the update is framed once and the same Buffer is written to
 * every socket. `ws.send(text)` would re-encode the string to UTF-8 and frame
 * it again for each socket, which was 55% of a 5,000-visitor burst in the
 * profile (bench/NOTES.md).
 */
export const nodeFanout: Fanout = {
  publish(_key, text, peers) {
    const frame = textFrame(text);
    for (const peer of peers) (peer as NodePeer).sendFrame(frame);
  },
};

export interface NodeSocketOptions {
  /** A socket that answers no ping for this long is terminated (and leaves online). */
  heartbeatTimeoutMs: number;
}

export function createNodeSockets(opts: NodeSocketOptions) {
  const wss = new WebSocketServer({
    noServer: true,
    clientTracking: false,
    perMessageDeflate: false,
    // ws closes with 1009 itself when a frame is larger than this.
    maxPayload: MAX_CLIENT_MESSAGE_BYTES,
  });
  // Each open socket and whether it has shown life since the last sweep.
  const open = new Map<WebSocket, boolean>();

  // One timer for all sockets: every half timeout, terminate those silent
  // since the last sweep and ping the rest. O(sockets) per sweep, nothing per message.
  const sweep = setInterval(() => {
    for (const [ws, alive] of open) {
      if (!alive) {
        ws.terminate();
        continue;
      }
      open.set(ws, false);
      ws.ping();
    }
  }, Math.max(50, Math.floor(opts.heartbeatTimeoutMs / 2)));
  sweep.unref();

  const bind = (ws: WebSocket, accept: (peer: Peer) => Session): void => {
    open.set(ws, true);
    const session = accept(new NodePeer(ws));
    ws.on("message", (data, isBinary) => {
      open.set(ws, true);
      session.message(isBinary ? null : data.toString(), byteLength(data));
    });
    ws.on("pong", () => open.set(ws, true));
    ws.on("close", () => {
      open.delete(ws);
      session.close();
    });
    // Protocol errors (bad frames, invalid UTF-8) are answered by ws with a close; nothing to add.
    ws.on("error", () => {});
  };

  const upgrade: UpgradeSocket = (c: Context, _key, accept) => {
    const env = c.env as UpgradeEnv | undefined;
    if (!env?.socket) return c.json({ error: "upgrade_failed", message: "not an upgrade request" }, 400);
    env.upgraded = true;
    wss.handleUpgrade(env.incoming, env.socket, env.head, (ws) => bind(ws, accept));
    return new Response(null, { status: 204 }); // never written: the socket now belongs to ws
  };

  /** Routes the server's upgrade requests through `fetch`. */
  const attach = (server: Server, fetch: Fetch): void => {
    server.on("upgrade", (incoming: IncomingMessage, socket: Duplex, head: Buffer) => {
      socket.on("error", () => {});
      // RFC 6455 §4.2.1: the opening handshake is HTTP/1.1 or later.
      if (incoming.httpVersionMajor === 1 && incoming.httpVersionMinor < 1) {
        void writeRefusal(socket, new Response("WebSocket needs HTTP/1.1", { status: 400 }));
        return;
      }
      const env: UpgradeEnv = { incoming, socket, head, upgraded: false };
      let request: Request;
      try {
        request = upgradeRequest(incoming);
      } catch {
        void writeRefusal(socket, new Response(null, { status: 400 }));
        return;
      }
      Promise.resolve(fetch(request, env)).then(
        (res) => (env.upgraded ? undefined : writeRefusal(socket, res)),
        () => writeRefusal(socket, new Response(null, { status: 500 })),
      );
    });
  };

  /** Resolves when every accepted socket has closed. */
  const drained = async (): Promise<void> => {
    while (open.size > 0) await new Promise((r) => setTimeout(r, 20));
  };

  const stop = () => clearInterval(sweep);

  return { upgrade, attach, drained, stop, get open() { return open.size; } };
}
