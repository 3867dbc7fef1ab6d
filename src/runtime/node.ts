// Node entry: read config, build store and hub, serve, wire shutdown.
// Run with Node's own type stripping: `node src/runtime/node.ts`.
import cluster from "node:cluster";
import process from "node:process";
import { createAdaptorServer } from "@hono/node-server";
import { serveStatic } from "@hono/node-server/serve-static";
import type { IncomingMessage, Server } from "node:http";
import type { AddressInfo } from "node:net";
import { createApp } from "../app.ts";
import { ConfigError } from "../core/errors.ts";
import { parseConfig } from "../core/config.ts";
import { createLogger } from "../core/logger.ts";
import { boot, PUBLIC_DIR } from "./boot.ts";
import { createNodeSockets, nodeFanout } from "./node-ws.ts";
import { undiciPoster } from "./undici-poster.ts";
import { handleStopSignals } from "./signals.ts";
import { checkClusterConfig, runPrimary } from "./node-cluster.ts";

const write = (line: string) => process.stdout.write(line + "\n");

async function main(): Promise<void> {
  const config = parseConfig(process.env);
  const log = createLogger(config.logLevel, write, { runtime: "node", pid: process.pid });
  checkClusterConfig(config);
  if (config.workers > 1 && cluster.isPrimary) return runPrimary(config, log);
  const booted = await boot(config, log, nodeFanout, {
    poster: undiciPoster({
      perOrigin: config.webhooks.perOrigin,
      connectTimeoutMs: config.webhooks.connectTimeoutMs,
      timeoutMs: config.webhooks.timeoutMs,
    }),
  });
  const sockets = createNodeSockets({ heartbeatTimeoutMs: config.heartbeatTimeoutMs });
  const app = createApp(
    booted.appDeps({
      upgrade: sockets.upgrade,
      peerAddress: (c) => (c.env as { incoming?: IncomingMessage } | undefined)?.incoming?.socket.remoteAddress,
      staticFiles: serveStatic({ root: PUBLIC_DIR }),
    }),
  );
  // HTTP/1.1 only (no TLS options given), so the server is a node:http Server.
  const server = createAdaptorServer({ fetch: app.fetch, hostname: config.host }) as Server;
  sockets.attach(server, app.fetch);
  server.on("error", (err) => {
    log.error("server error", { err });
    void booted.store.close().finally(() => process.exit(1));
  });
  // A viral burst arrives faster than accept() drains Node's default backlog
  // of 511; the kernel then drops handshakes and clients wait out 1-3-7 s SYN
  // retries (bench/NOTES.md). 4096 is this machine's net.core.somaxconn.
  server.listen({ port: config.port, host: config.host, backlog: 4096 }, () => {
    const { port } = server.address() as AddressInfo;
    log.info("listening", { url: `http://${config.host}:${port}`, port, store: booted.storeKind });
  });

  handleStopSignals({
    log,
    on: (signal, listener) => process.on(signal, listener),
    shutdown: () =>
      booted.shutdown(() => {
        server.close();
        server.closeIdleConnections();
      }, sockets.drained),
    exit: (code) => process.exit(code),
    // Under WORKERS, Ctrl-C reaches the whole process group; the primary relays
    // it as SIGTERM, so a worker ignores the direct SIGINT (or it would count twice).
    ignore: cluster.isWorker ? ["SIGINT"] : [],
  });
}

main().catch((err: unknown) => {
  const message = err instanceof ConfigError || err instanceof Error ? err.message : String(err);
  write(JSON.stringify({ time: new Date().toISOString(), level: "error", msg: "startup failed", err: message }));
  process.exit(err instanceof ConfigError ? 2 : 1);
});
