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

function peerOf(ws: ServerWebSocket<SocketData>): Peer {
  return {
    send(text) {
      if (ws.readyState === 1) ws.send(text);
    },
    close(code, reason) {
      if (ws.readyState <= 1) ws.close(code, reason);
    },
    // Subscribed at the hello, not at open: counts reach a joiner only after its visit commits.
    watch() {
      if (ws.readyState === 1) ws.subscribe(ws.data.key);
    },
  };
}

export interface BunSocketOptions {
  /** A socket that answers no ping for this long is closed (and leaves online). */
  heartbeatTimeoutMs: number;
}

export function createBunSockets(opts: BunSocketOptions) {
  const open = new Set<ServerWebSocket<SocketData>>();
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
      open.add(ws);
      ws.data.session = ws.data.accept(peerOf(ws));
    },
    message(ws, data) {
      // Frames over maxPayloadLength never get here, so only binary vs text matters.
      ws.data.session?.message(typeof data === "string" ? data : null, Buffer.byteLength(data));
    },
    close(ws) {
      open.delete(ws);
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
    while (open.size > 0) await new Promise((r) => setTimeout(r, 20));
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
