/// <reference types="bun" />
import type { Server, ServerWebSocket, WebSocketHandler } from "bun";
import type { Context } from "hono";
import type { UpgradeSocket } from "../counters.ts";
import type { Session } from "../core/hub.ts";
import type { Fanout, Peer } from "../core/ports.ts";
import { MAX_CLIENT_MESSAGE_BYTES } from "../core/protocol.ts";

// A thin WebSocket adapter for Bun (https://bun.com/docs/runtime/http/websockets):
// the upgrade request goes through the Hono app like any other, Bun.serve's
// `server.upgrade` carries the accept callback in `ws.data`, and the socket is
// bound straight to a core Session when it opens. Every socket subscribes to
// its key's topic when it gets its hello, so a count goes out with one native `server.publish`
// instead of a loop over peers (DESIGN.md §5).

interface SocketData {
  key: string;
  accept: (peer: Peer) => Session;
  session: Session | null;
}

export type BunServer = Server<SocketData>;

/**
 * A socket as core sees it. A class, not an object of closures: one small
 * object per socket instead of four, which is most of what headcount adds per
 * idle connection on Bun (bench "idle memory").
 */
class BunPeer implements Peer {
  readonly #ws: ServerWebSocket<SocketData>;
  constructor(ws: ServerWebSocket<SocketData>) {
    this.#ws = ws;
  }
  send(text: string): void {
    if (this.#ws.readyState === 1) this.#ws.send(text);
  }
  close(code: number, reason: string): void {
    if (this.#ws.readyState <= 1) this.#ws.close(code, reason);
  }
  /** Subscribed at the hello, not at open: counts reach a joiner only after its visit commits. */
  watch(): void {
    if (this.#ws.readyState === 1) this.#ws.subscribe(this.#ws.data.key);
  }
}

export interface BunSocketOptions {
  /** A socket that answers no ping for this long is closed (and leaves online). */
  heartbeatTimeoutMs: number;
}

export function createBunSockets(opts: BunSocketOptions) {
  // A count, not a set of sockets: Bun does the heartbeat, so nothing walks them.
  let sockets = 0;
  // boot() needs the fanout before Bun.serve has returned the server.
  let server: BunServer | null = null;

  const upgrade: UpgradeSocket = (c: Context, key, accept) => {
    const srv = c.env as BunServer | undefined;
    if (srv?.upgrade(c.req.raw, { data: { key, accept, session: null } })) {
      return new Response(null); // ignored by Bun: the 101 is already on its way
    }
    return c.json({ error: "upgrade_failed", message: "not an upgrade request" }, 400);
  };

  const websocket: WebSocketHandler<SocketData> = {
    // Bun closes with 1009 itself when a frame is larger than this.
    maxPayloadLength: MAX_CLIENT_MESSAGE_BYTES,
    // Bun pings a quiet socket shortly before this many seconds pass and closes
    // it if nothing comes back (whole seconds, at least 8).
    idleTimeout: Math.min(960, Math.max(8, Math.ceil(opts.heartbeatTimeoutMs / 1000))),
    sendPings: true,
    perMessageDeflate: false,
    open(ws) {
      sockets++;
      ws.data.session = ws.data.accept(new BunPeer(ws));
    },
    message(ws, data) {
      // Frames over maxPayloadLength never get here, so only binary vs text matters.
      ws.data.session?.message(typeof data === "string" ? data : null, Buffer.byteLength(data));
    },
    close(ws) {
      sockets--;
      ws.data.session?.close();
    },
  };

  /** Publishes to the key's topic: every subscribed socket in this process gets it natively. */
  const fanout: Fanout = {
    publish(key, text) {
      server?.publish(key, text, false);
    },
  };

  /** Resolves when every accepted socket has closed. */
  const drained = async (): Promise<void> => {
    while (sockets > 0) await new Promise((r) => setTimeout(r, 20));
  };

  /** The client address Bun saw for an HTTP request. */
  const peerAddress = (c: Context): string | undefined => (c.env as BunServer | undefined)?.requestIP(c.req.raw)?.address;

  return {
    upgrade,
    peerAddress,
    websocket,
    fanout,
    drained,
    attach(s: BunServer) {
      server = s;
    },
  };
}
