/// <reference path="./deno-globals.d.ts" />
import type { Context } from "hono";
import type { UpgradeSocket } from "../counters.ts";
import type { Session } from "../core/hub.ts";
import type { Peer } from "../core/ports.ts";
import { MAX_CLIENT_MESSAGE_BYTES } from "../core/protocol.ts";

// A thin WebSocket adapter for Deno
// (https://docs.deno.com/api/deno/~/Deno.upgradeWebSocket): the upgrade
// request goes through the Hono app like any other, and the socket is bound
// straight to a core Session when it opens. Deno has no frame-size limit to
// set, so the core Session closes oversized messages with 1009 from the
// byte length we pass it.

const encoder = new TextEncoder();

/**
 * The UTF-8 length of a text frame, exact where it decides anything: a string
 * of n UTF-16 units is n to 3n bytes, so only lengths between a third of the
 * limit and the limit need encoding. Elsewhere `n` is returned, which is
 * exact for the ASCII pings clients send and on the same side of the limit.
 */
function textBytes(text: string): number {
  const n = text.length;
  if (n * 3 <= MAX_CLIENT_MESSAGE_BYTES || n > MAX_CLIENT_MESSAGE_BYTES) return n;
  return encoder.encode(text).byteLength;
}

export interface DenoSocketOptions {
  /** A socket that answers no ping for this long is closed (and leaves online). */
  heartbeatTimeoutMs: number;
}

export function createDenoSockets(opts: DenoSocketOptions) {
  // Deno pings every idleTimeout seconds and closes a socket whose pong does not come back in time.
  const idleTimeout = Math.max(1, Math.ceil(opts.heartbeatTimeoutMs / 1000));
  const open = new Set<WebSocket>();

  const bind = (ws: WebSocket, accept: (peer: Peer) => Session): void => {
    let session: Session | null = null;
    ws.binaryType = "arraybuffer";
    ws.onopen = () => {
      open.add(ws);
      session = accept({
        send(text) {
          if (ws.readyState === WebSocket.OPEN) ws.send(text);
        },
        close(code, reason) {
          // Deno lets a server socket send any close code (a browser's only 1000 and 3000-4999).
          if (ws.readyState <= WebSocket.OPEN) ws.close(code, reason);
        },
      });
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

  const upgrade: UpgradeSocket = (c: Context, _key, accept) => {
    let upgraded: { socket: WebSocket; response: Response };
    try {
      upgraded = Deno.upgradeWebSocket(c.req.raw, { idleTimeout });
    } catch {
      // e.g. no Sec-WebSocket-Key: not a WebSocket handshake after all.
      return c.json({ error: "upgrade_failed", message: "not a valid WebSocket handshake" }, 400);
    }
    bind(upgraded.socket, accept);
    return upgraded.response;
  };

  /** Resolves when every accepted socket has closed. */
  const drained = async (): Promise<void> => {
    while (open.size > 0) await new Promise((r) => setTimeout(r, 20));
  };

  /** The client address Deno saw: Deno.serve's handler info is the app's `c.env`. */
  const peerAddress = (c: Context): string | undefined => (c.env as Deno.ServeHandlerInfo | undefined)?.remoteAddr.hostname;

  return { upgrade, peerAddress, drained };
}
