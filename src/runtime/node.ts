// Node entry: read config, build the store and the hub, serve, wire shutdown.
// `npm start` runs it as `node --import ./src/runtime/node-preload.mjs src/runtime/node.ts`
// (the preload makes module loading cheap: see that file).
import cluster from "node:cluster";
import type { IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import process from "node:process";
import { serveStatic } from "@hono/node-server/serve-static";
import { parseConfig } from "../core/config.ts";
import { createLogger } from "../core/logger.ts";
import { startHeadcount } from "../server/compose.ts";
import { exitOnStartupFailure, nodeParts, PUBLIC_DIR } from "./process-parts.ts";
import { checkClusterConfig, runPrimary } from "./node-cluster.ts";
import { createNodeServer } from "./node-http.ts";
import { nodeDirectStream } from "./node-stream.ts";
import { createNodeSockets, nodeFanout } from "./node-ws.ts";
import { handleStopSignals } from "./signals.ts";

const write = (line: string) => process.stdout.write(line + "\n");

async function main(): Promise<void> {
  const config = parseConfig(process.env);
  const log = createLogger(config.logLevel, write, { runtime: "node", pid: process.pid });
  checkClusterConfig(config);
  if (config.workers > 1 && cluster.isPrimary) return runPrimary(config, log);
  const headcount = await startHeadcount(config, log, {
    ...nodeParts(),
    fanout: nodeFanout,
    poster: async () => (await import("./undici-poster.ts")).undiciPoster(config.webhooks),
    peerAddress: (c) => (c.env as { incoming?: IncomingMessage } | undefined)?.incoming?.socket.remoteAddress,
    staticFiles: serveStatic({ root: PUBLIC_DIR }),
    directStream: nodeDirectStream,
  });
  const sockets = createNodeSockets({ heartbeatTimeoutMs: config.heartbeatTimeoutMs, maxBufferedBytes: config.limits.maxBufferedBytes });
  const server = createNodeServer(headcount.app.http.fetch, config);
  sockets.attach(server, headcount.app, headcount.bind);
  server.on("error", (err) => {
    log.error("server error", { err });
    void headcount.abort().finally(() => process.exit(1));
  });
  // A burst arrives faster than accept() drains Node's default backlog of 511; the kernel then
  // drops handshakes and clients wait out SYN retries (bench/NOTES.md). 4096 is net.core.somaxconn here.
  server.listen({ port: config.port, host: config.host, backlog: 4096 }, () => {
    const { port } = server.address() as AddressInfo;
    log.info("listening", { url: `http://${config.host}:${port}`, port, store: headcount.storeKind });
  });

  handleStopSignals({
    log,
    on: (signal, listener) => process.on(signal, listener),
    shutdown: () =>
      headcount.shutdown(() => {
        server.close();
        server.closeIdleConnections();
        sockets.stop();
      }, sockets.drained),
    exit: (code) => process.exit(code),
    // Under WORKERS, Ctrl-C reaches the whole process group; the primary relays
    // it as SIGTERM, so a worker ignores the direct SIGINT (or it would count twice).
    ignore: cluster.isWorker ? ["SIGINT"] : [],
  });
}

main().catch(exitOnStartupFailure(write, (code) => process.exit(code)));
