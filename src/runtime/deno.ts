/// <reference path="./deno-globals.d.ts" />
// Deno entry: read config, build the store and the hub, serve, wire shutdown.
// Run with `deno task start`: deno.json and deno-permissions.ts hold the permissions.
import { relative } from "node:path";
import process from "node:process";
import { serveStatic } from "hono/deno";
import { parseConfig } from "../core/config.ts";
import { loopFanout } from "../core/hub.ts";
import { createLogger } from "../core/logger.ts";
import { startHeadcount } from "../server/compose.ts";
import { listen } from "./deno-listen.ts";
import { createDenoSockets } from "./deno-ws.ts";
import { fetchPoster } from "./fetch-poster.ts";
import { exitOnStartupFailure, nodeParts, PUBLIC_DIR } from "./process-parts.ts";
import { handleStopSignals } from "./signals.ts";

const write = (line: string) => console.log(line);
// node:process's exit rather than Deno.exit: only it runs "exit" listeners.
const exit = (code: number): never => process.exit(code);

async function main(): Promise<void> {
  const config = parseConfig(Deno.env.toObject());
  const log = createLogger(config.logLevel, write, { runtime: "deno", pid: Deno.pid });
  // Deno cannot read /proc/self/limits without --allow-all; the task passes `ulimit -n`.
  const limit = Number(Deno.env.get("HEADCOUNT_OPEN_FILE_LIMIT"));
  const headcount = await startHeadcount(config, log, {
    ...nodeParts(Number.isInteger(limit) && limit > 0 ? limit : undefined),
    fanout: loopFanout,
    poster: () => fetchPoster(config.webhooks),
    peerAddress: (c) => (c.env as Deno.ServeHandlerInfo | undefined)?.remoteAddr.hostname,
    // hono/deno resolves `root` against the working directory, so make it relative to it.
    staticFiles: serveStatic({ root: relative(Deno.cwd(), PUBLIC_DIR) || "." }),
  });
  const sockets = createDenoSockets({ heartbeatTimeoutMs: config.heartbeatTimeoutMs, maxBufferedBytes: config.limits.maxBufferedBytes });
  const announce = (port: number) => log.info("listening", { url: `http://${config.host}:${port}`, port, store: headcount.storeKind });
  let server: ReturnType<typeof listen>;
  try {
    server = listen({ port: config.port, hostname: config.host, handler: sockets.handler(headcount.app, headcount.bind) }, log, announce);
  } catch (err) {
    await headcount.abort();
    throw err;
  }

  handleStopSignals({
    log,
    on: (signal, listener) => Deno.addSignalListener(signal, listener),
    shutdown: () => headcount.shutdown(() => server.stop(), sockets.drained),
    exit,
  });
}

main().catch(exitOnStartupFailure(write, exit));
