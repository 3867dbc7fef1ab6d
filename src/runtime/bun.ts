/// <reference types="bun" />
// Bun entry: read config, build store and hub, serve, wire shutdown.
// Run with `bun src/runtime/bun.ts`.
import { relative } from "node:path";
import { serveStatic } from "hono/bun";
import { createApp } from "../app.ts";
import { ConfigError } from "../core/errors.ts";
import { parseConfig } from "../core/config.ts";
import { createLogger } from "../core/logger.ts";
import { boot, PUBLIC_DIR } from "./boot.ts";
import { handleStopSignals } from "./signals.ts";
import { createBunSockets, type BunServer } from "./bun-ws.ts";

const write = (line: string) => process.stdout.write(line + "\n");

async function main(): Promise<void> {
  const config = parseConfig(Bun.env);
  const log = createLogger(config.logLevel, write, { runtime: "bun", pid: process.pid });
  const sockets = createBunSockets({ heartbeatTimeoutMs: config.heartbeatTimeoutMs });
  // In-process fan-out is Bun's topic publish (bun-ws.ts), wired to the server once it exists.
  const booted = await boot(config, log, sockets.fanout);
  const app = createApp(
    booted.appDeps({
      upgrade: sockets.upgrade,
      peerAddress: sockets.peerAddress,
      // hono/bun resolves `root` against the working directory, so make it relative to it.
      staticFiles: serveStatic({ root: relative(process.cwd(), PUBLIC_DIR) || "." }),
    }),
  );
  let server: BunServer;
  try {
    server = Bun.serve({ port: config.port, hostname: config.host, fetch: app.fetch, websocket: sockets.websocket });
  } catch (err) {
    await booted.store.close();
    throw err;
  }
  sockets.attach(server);
  log.info("listening", { url: `http://${config.host}:${server.port}`, port: server.port, store: booted.storeKind });

  handleStopSignals({
    log,
    on: (signal, listener) => process.on(signal, listener),
    shutdown: () => booted.shutdown(() => void server.stop(), sockets.drained),
    exit: (code) => process.exit(code),
  });
}

main().catch((err: unknown) => {
  const message = err instanceof ConfigError || err instanceof Error ? err.message : String(err);
  write(JSON.stringify({ time: new Date().toISOString(), level: "error", msg: "startup failed", err: message }));
  process.exit(err instanceof ConfigError ? 2 : 1);
});
