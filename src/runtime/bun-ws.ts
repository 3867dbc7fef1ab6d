/// <reference types="bun" />
import type { Server, ServerWebSocket, WebSocketHandler } from "bun";
import type { HeadcountApp } from "../app.ts";
import type { Fanout, Peer } from "../core/ports.ts";
import { MAX_CLIENT_MESSAGE_BYTES } from "../core/protocol.ts";
import type { Session } from "../core/room.ts";
import { isVisitUpgrade, type Admission, type Visit } from "../routes/admission.ts";
import type { BindVisit } from "../server/visits.ts";
import { badHostResponse, validHost } from "./host-header.ts";
import { PingNonces } from "./ping-nonces.ts";

// Bun's WebSocket adapter (https://bun.com/docs/runtime/http/websockets): a
// visit's handshake goes to the app's one decision (app.admit); an accepted
// one is upgraded by Bun.serve and bound straight to the engine when it
// opens. A socket subscribes to its key's topic when it gets its hello, so a
// count goes out with one native `server.publish` (DESIGN.md §5).

interface SocketData {
  visit: Visit;
  session: Session | null;
  /** Answered the last heartbeat ping (see the sweep below). */
  alive: boolean;
}

export type BunServer = Server<SocketData>;

export interface BunSocketOptions {
  /** A socket that answers no ping for this long is closed (and leaves online). */
  heartbeatTimeoutMs: number;
  /** Unsent bytes a socket may hold; past it Bun closes it (closeOnBackpressureLimit). */
  maxBufferedBytes: number;
}

/** One small object per socket: most of what headcount adds per idle connection on Bun. */
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
  greeted(): void {
    if (this.#ws.readyState === 1) this.#ws.subscribe(this.#ws.data.visit.key);
  }
}

/**
 * Bun.serve's idleTimeout: Bun's one bound on a plain HTTP connection. A
 * single timer (whole seconds, checked in coarse steps) covers waiting for
 * the headers, the body, the next request on a kept-alive connection and the
 * handler's answer (a slower handler is cut), so it is the longer of
 * HEADERS_TIMEOUT_MS and KEEP_ALIVE_TIMEOUT_MS, rounded up. Bun has no hook
 * on accepted connections, so no cap per address (README "Plain HTTP").
 * https://bun.com/docs/runtime/http/server
 */
export function bunIdleTimeoutS(http: { headersTimeoutMs: number; keepAliveTimeoutMs: number }): number {
  return Math.min(255, Math.max(1, Math.ceil(Math.max(http.headersTimeoutMs, http.keepAliveTimeoutMs) / 1000)));
}

export function createBunSockets(opts: BunSocketOptions) {
  const open = new Set<ServerWebSocket<SocketData>>();
  // The composition needs the fan-out before Bun.serve has returned the server.
  let server: BunServer | null = null;
  let bind: BindVisit | null = null;

  /** Bun.serve's fetch: a visit's handshake to app.admit and Bun's upgrade, everything else to the app. */
  const fetch = (app: HeadcountApp) => (req: Request, srv: BunServer): Response | undefined | Promise<Response> => {
    if (!validHost(req.headers.get("host"))) return badHostResponse();
    if (!isVisitUpgrade(req.url, req.headers.get("upgrade"))) return app.http.fetch(req, srv);
    const upgrade = (decision: Admission): Response | undefined => {
      if (decision.refused) return decision.refused;
      if (srv.upgrade(req, { data: { visit: decision.visit, session: null, alive: true } })) return undefined;
      return Response.json({ error: "upgrade_failed", message: "not a valid WebSocket handshake" }, { status: 400 });
    };
    // Decided at once, but for a new key at MAX_KEYS (one lookup; Bun upgrades from a later tick too).
    const decided = app.admit({ method: req.method, url: req.url, header: (n) => req.headers.get(n) }, srv.requestIP(req)?.address);
    return decided instanceof Promise ? (decided.then(upgrade) as Promise<Response>) : upgrade(decided);
  };

  // The heartbeat is ours, as on Node (node-ws.ts): every half timeout, terminate
  // the sockets that did not answer the last ping and ping the rest with a
  // random payload that only a pong echoing it answers. Bun's own (idleTimeout
  // with sendPings) counts anything the client sends, a ping or an unsolicited
  // pong included, so a client that writes and never reads would pass it.
  const nonces = new PingNonces();
  const sweep = setInterval(() => {
    const nonce = nonces.next();
    for (const ws of open) {
      if (!ws.data.alive) ws.terminate();
      else {
        ws.data.alive = false;
        ws.ping(nonce);
      }
    }
  }, Math.max(50, Math.floor(opts.heartbeatTimeoutMs / 2)));
  sweep.unref();

  const websocket: WebSocketHandler<SocketData> = {
    // Bun closes with 1009 itself when a frame is larger than this.
    maxPayloadLength: MAX_CLIENT_MESSAGE_BYTES,
    // No idle timeout and no automatic pings: the sweep above is the heartbeat.
    idleTimeout: 0,
    sendPings: false,
    perMessageDeflate: false,
    // A reader that lets this much pile up is not reading: Bun closes it rather than buffer without bound.
    backpressureLimit: opts.maxBufferedBytes,
    closeOnBackpressureLimit: true,
    open(ws) {
      open.add(ws);
      ws.data.session = bind!(ws.data.visit, new BunPeer(ws));
    },
    message(ws, data) {
      // Frames over maxPayloadLength never get here, so only binary vs text matters.
      ws.data.session?.message(typeof data === "string" ? data : null, Buffer.byteLength(data));
    },
    pong(ws, data) {
      if (nonces.answers(data)) ws.data.alive = true;
    },
    close(ws) {
      open.delete(ws);
      ws.data.session?.close();
    },
  };

  /** Publishes to the key's topic: every subscribed socket in this process gets it natively; event streams (routes/event-stream.ts) are no Bun socket. */
  const fanout: Fanout = {
    publish(key, text, peers) {
      server?.publish(key, text, false);
      for (const peer of peers) if (!(peer instanceof BunPeer)) peer.send(text);
    },
  };

  return {
    fetch,
    websocket,
    fanout,
    /** Resolves when every accepted socket has closed. */
    drained: async (): Promise<void> => {
      while (open.size > 0) await new Promise((r) => setTimeout(r, 20));
    },
    attach(s: BunServer, b: BindVisit) {
      server = s;
      bind = b;
    },
  };
}
