/// <reference path="./deno-globals.d.ts" />
// Deno entry: read config, build store and hub, serve, wire shutdown.
// Run with `deno task start`: deno.json and deno-permissions.ts hold the permissions.
import { relative } from "node:path";
import process from "node:process";
import { serveStatic } from "hono/deno";
import { createApp } from "../app.ts";
import { loopFanout } from "../core/hub.ts";
import { ConfigError } from "../core/errors.ts";
import { parseConfig } from "../core/config.ts";
import { createLogger } from "../core/logger.ts";
import { boot, PUBLIC_DIR } from "./boot.ts";
import { createDenoSockets } from "./deno-ws.ts";
import { handleStopSignals } from "./signals.ts";

const write = (line: string) => console.log(line);
// node:process's exit rather than Deno.exit: only it runs "exit" listeners,
// and the data-dir lock releases itself in one on a hard exit.
const exit = (code: number): never => process.exit(code);

async function main(): Promise<void> {
  const config = parseConfig(Deno.env.toObject());
  const log = createLogger(config.logLevel, write, { runtime: "deno", pid: Deno.pid });
  // Deno cannot read /proc/self/limits without --allow-all; the task passes `ulimit -n`.
  const limit = Number(Deno.env.get("HEADCOUNT_OPEN_FILE_LIMIT"));
  const booted = await boot(config, log, loopFanout, { openFileLimit: Number.isInteger(limit) && limit > 0 ? limit : undefined });
  const sockets = createDenoSockets({ heartbeatTimeoutMs: config.heartbeatTimeoutMs });
  const app = createApp(
    booted.appDeps({
      upgrade: sockets.upgrade,
      peerAddress: sockets.peerAddress,
      // hono/deno resolves `root` against the working directory, so make it relative to it.
      staticFiles: serveStatic({ root: relative(Deno.cwd(), PUBLIC_DIR) || "." }),
    }),
  );
  let server: Deno.HttpServer;
  let port = config.port;
  const serve = (): Deno.HttpServer =>
    Deno.serve({
      port,
      hostname: config.host,
      handler: (req, info) => app.fetch(req, info),
      onListen: (addr) => {
        if (port === 0) log.info("listening", { url: `http://${config.host}:${addr.port}`, port: addr.port, store: booted.storeKind });
        port = addr.port;
      },
    });
  try {
    server = serve();
  } catch (err) {
    await booted.store.close();
    throw err;
  }
  if (config.port !== 0) log.info("listening", { url: `http://${config.host}:${port}`, port, store: booted.storeKind });

  // Deno.serve's accept loop dies when accept() fails with EMFILE (the
  // process is at its open-file limit: denoland/deno#10148), rejecting a
  // promise nobody can await and ending the process. Keep the process, and
  // listen again once descriptors are free; the sockets already open are
  // untouched.
  globalThis.addEventListener("unhandledrejection", (e: PromiseRejectionEvent) => {
    if (!/Too many open files|os error 24/.test(String((e.reason as Error | undefined)?.message ?? e.reason))) return;
    e.preventDefault();
    log.error("accept failed: at the open-file limit; listening again", { open_sockets: booted.gate.open });
    const relisten = () => {
      if (signals.stopping) return;
      try {
        server = serve();
        log.info("listening again", { port });
      } catch (err) {
        log.debug("listen again failed; retrying", { err });
        setTimeout(relisten, 250);
      }
    };
    setTimeout(relisten, 250);
  });
  const signals = handleStopSignals({
    log,
    on: (signal, listener) => Deno.addSignalListener(signal, listener),
    shutdown: () => booted.shutdown(() => void server.shutdown(), sockets.drained),
    exit,
  });
}

main().catch((err: unknown) => {
  const message = err instanceof ConfigError || err instanceof Error ? err.message : String(err);
  write(JSON.stringify({ time: new Date().toISOString(), level: "error", msg: "startup failed", err: message }));
  exit(err instanceof ConfigError ? 2 : 1);
});
