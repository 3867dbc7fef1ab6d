import { ServerResponse } from "node:http";
import type { Context } from "hono";
import { RESPONSE_ALREADY_SENT } from "@hono/node-server/utils/response";
import type { DirectStream } from "../server/compose.ts";

// Node's event streams, written straight to the ServerResponse rather than
// through a ReadableStream that @hono/node-server pumps: the pump costs a
// read promise and a callback per event per stream, after the broadcast has
// returned, so its cost escaped the broadcaster's pacing, and a 5,000-visitor
// SSE burst turned into a broadcast storm (bench/NOTES.md). Here each event
// is one write, inside the broadcast, and the bytes a reader has not taken
// are the response's writableLength (its own buffer and the socket's).
// https://github.com/honojs/node-server#direct-response-from-nodejs-api

export function nodeDirectStream(c: Context, headers: Record<string, string>): DirectStream | undefined {
  const outgoing = (c.env as { outgoing?: unknown } | undefined)?.outgoing;
  if (!(outgoing instanceof ServerResponse)) return undefined;
  // The body ends with the connection (RFC 9112 §6.3), not in chunks: each event is then one plain socket write,
  // where chunked encoding corks the socket and writes on the next tick, outside the broadcast it belongs to.
  outgoing.useChunkedEncodingByDefault = false;
  outgoing.shouldKeepAlive = false;
  outgoing.writeHead(200, { ...headers, Connection: "close" });
  outgoing.flushHeaders();
  return {
    sink: {
      get buffered() {
        return outgoing.writableLength;
      },
      write: (chunk) => void outgoing.write(chunk),
      end: () => void outgoing.end(),
      destroy: () => void outgoing.destroy(),
    },
    // Tells @hono/node-server the response is ours: it writes nothing more.
    response: RESPONSE_ALREADY_SENT,
    onGone: (listener) => void outgoing.once("close", listener),
  };
}
