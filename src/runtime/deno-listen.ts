/// <reference path="./deno-globals.d.ts" />
import type { Logger } from "../core/ports.ts";

// Deno.serve, kept listening. Its accept loop dies when accept() fails with
// EMFILE (the process is at its open-file limit: denoland/deno#10148),
// rejecting a promise nobody can await and ending the process. Here the
// process stays, and listens again once descriptors are free; sockets already
// open are untouched.

export interface Listener {
  readonly port: number;
  /** Stops accepting; requests in flight finish. */
  stop(): void;
}

export function listen(
  opts: { port: number; hostname: string; handler: (req: Request, info: Deno.ServeHandlerInfo) => Response | Promise<Response> },
  log: Logger,
  onListening: (port: number) => void,
): Listener {
  let port = opts.port;
  let stopped = false;
  let announced = false;
  const serve = (): Deno.HttpServer =>
    Deno.serve({
      port,
      hostname: opts.hostname,
      handler: opts.handler,
      onListen: (addr) => {
        port = addr.port;
        if (!announced) onListening(port);
        announced = true;
      },
    });
  let server = serve();
  globalThis.addEventListener("unhandledrejection", (e: PromiseRejectionEvent) => {
    if (!/Too many open files|os error 24/.test(String((e.reason as Error | undefined)?.message ?? e.reason))) return;
    e.preventDefault();
    log.error("accept failed: at the open-file limit; listening again");
    const again = () => {
      if (stopped) return;
      try {
        server = serve();
        log.info("listening again", { port });
      } catch (err) {
        log.debug("listen again failed; retrying", { err });
        setTimeout(again, 250);
      }
    };
    setTimeout(again, 250);
  });
  return {
    get port() {
      return port;
    },
    stop() {
      stopped = true;
      void server.shutdown();
    },
  };
}
