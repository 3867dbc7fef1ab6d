/// <reference types="bun" />
// Bun entry: read config, build the store and the hub, serve, wire shutdown.
// Run with `bun src/runtime/bun.ts` (or the single binary `npm run build` makes).
import type { Context } from "hono";
import { parseConfig } from "../core/config.ts";
import { createLogger } from "../core/logger.ts";
import { startHeadcount } from "../server/compose.ts";
import { bunStatic } from "./bun-static.ts";
import { bunIdleTimeoutS, createBunSockets, type BunServer } from "./bun-ws.ts";
import { runProcessCommand } from "./commands.ts";
import { fetchPoster } from "./fetch-poster.ts";
import { exitOnStartupFailure, nodeParts } from "./process-parts.ts";
import { handleStopSignals } from "./signals.ts";

const write = (line: string) => process.stdout.write(line + "\n");

async function main(): Promise<void> {
  const config = parseConfig(Bun.env);
  const log = createLogger(config.logLevel, write, { runtime: "bun", pid: process.pid });
  const sockets = createBunSockets({ heartbeatTimeoutMs: config.heartbeatTimeoutMs, maxBufferedBytes: config.limits.maxBufferedBytes });
  const headcount = await startHeadcount(config, log, {
    ...nodeParts(),
    // In-process fan-out is Bun's topic publish (bun-ws.ts), wired to the server once it exists.
    fanout: sockets.fanout,
    poster: () => fetchPoster(config.webhooks),
    peerAddress: (c: Context) => (c.env as BunServer | undefined)?.requestIP(c.req.raw)?.address,
    staticFiles: bunStatic(), // public/: embedded in the binary, else on disk
    // Bun.serve's idleTimeout (bunIdleTimeoutS: 10 s by default) would cut an event stream between keep-alives;
    // a stream has its own bounds (keep-alive writes, the slow-reader cut, the socket caps).
    longLived: (c: Context) => (c.env as BunServer).timeout(c.req.raw, 0),
  });
  let server: BunServer;
  try {
    server = Bun.serve({
      port: config.port,
      hostname: config.host,
      idleTimeout: bunIdleTimeoutS(config.http),
      fetch: sockets.fetch(headcount.app),
      websocket: sockets.websocket,
    });
  } catch (err) {
    await headcount.abort();
    throw err;
  }
  sockets.attach(server, headcount.bind);
  log.info("listening", { url: `http://${config.host}:${server.port}`, port: server.port, store: headcount.storeKind });

  handleStopSignals({
    log,
    on: (signal, listener) => process.on(signal, listener),
    shutdown: () => headcount.shutdown(() => void server.stop(), sockets.drained),
    exit: (code) => process.exit(code),
  });
}

// `headcount db:copy …` / `db:migrate` (commands.ts); no argument serves.
runProcessCommand("binary")
  .then((ran) => (ran ? undefined : main()))
  .catch(exitOnStartupFailure(write, (code) => process.exit(code)));
