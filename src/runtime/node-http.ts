import type { Server } from "node:http";
import type { Socket } from "node:net";
import { createAdaptorServer } from "@hono/node-server";
import type { Hono } from "hono";
import { addressKey, UNKNOWN_ADDRESS } from "../core/address.ts";
import type { Config } from "../core/config.ts";

// Node's HTTP server, bounded (issue "hostile clients"): headers must arrive
// within HEADERS_TIMEOUT_MS (Node's default is 60 s, and its check runs only
// every 30 s), an idle keep-alive connection closes after
// KEEP_ALIVE_TIMEOUT_MS, and one address may hold at most
// MAX_CONNECTIONS_PER_IP plain HTTP connections at once, so a slowloris from
// one address cannot take every descriptor. A connection that becomes a
// WebSocket leaves this count: the socket caps govern it from then on.
// https://nodejs.org/api/http.html#httpcreateserveroptions-requestlistener

export function createNodeServer(fetch: Hono["fetch"], config: Pick<Config, "host" | "http" | "limits" | "proxy">): Server {
  const { headersTimeoutMs, keepAliveTimeoutMs, maxConnectionsPerIp } = config.http;
  const server = createAdaptorServer({
    fetch,
    hostname: config.host,
    serverOptions: {
      headersTimeout: headersTimeoutMs,
      requestTimeout: Math.max(headersTimeoutMs, 30_000),
      keepAliveTimeout: keepAliveTimeoutMs,
      connectionsCheckingInterval: Math.min(1000, headersTimeoutMs),
    },
  }) as Server;
  // Behind a proxy every connection comes from the proxy: the cap would throttle it, not a client.
  if (config.proxy.header) return server;
  const perAddress = new Map<string, number>();
  const counted = new WeakMap<Socket, string>();
  const release = (socket: Socket) => {
    const key = counted.get(socket);
    if (key === undefined) return;
    counted.delete(socket);
    const n = (perAddress.get(key) ?? 1) - 1;
    if (n <= 0) perAddress.delete(key);
    else perAddress.set(key, n);
  };
  server.on("connection", (socket: Socket) => {
    const key = addressKey(socket.remoteAddress ?? "", config.limits.ipv6Prefix) ?? UNKNOWN_ADDRESS;
    const n = perAddress.get(key) ?? 0;
    if (n >= maxConnectionsPerIp) {
      socket.destroy();
      return;
    }
    perAddress.set(key, n + 1);
    counted.set(socket, key);
    socket.once("close", () => release(socket));
  });
  // Listeners run in order: this one is added first, so the upgraded socket is released before ws takes it.
  server.prependListener("upgrade", (_req, socket: Socket) => release(socket));
  return server;
}
