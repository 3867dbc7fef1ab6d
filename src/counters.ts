import type { Context } from "hono";
import type { Counters } from "./app.ts";
import type { Hub, Session } from "./core/hub.ts";
import type { Peer } from "./core/ports.ts";
import { CloseCode } from "./core/protocol.ts";
import type { SocketGate } from "./core/socket-gate.ts";

/** A runtime's WebSocket upgrade: accept the socket for `key` and hand its Peer to `accept`. */
export type UpgradeSocket = (c: Context, key: string, accept: (peer: Peer) => Session) => Response | Promise<Response>;

const refused = (key: string): Session => ({ key, message: () => {}, close: () => {} });

/**
 * Counters backed by an in-process Hub (Node, Bun, Deno). The socket gate is
 * acquired when the socket opens (upgrades in flight can race past the
 * pre-upgrade check) and released when it closes.
 */
export function hubCounters(hub: Hub, upgrade: UpgradeSocket, gate?: SocketGate): Counters {
  return {
    snapshot: (key) => hub.snapshot(key),
    connect: (c, key, resume, address) =>
      upgrade(c, key, (peer) => {
        if (gate?.acquire(address)) {
          peer.close(CloseCode.tryAgainLater, "server is at its socket limit");
          return refused(key);
        }
        const session = hub.open(peer, key, resume);
        if (!gate) return session;
        return {
          key,
          message: (data, bytes) => session.message(data, bytes),
          close: () => {
            session.close();
            gate.release(address);
          },
        };
      }),
  };
}
