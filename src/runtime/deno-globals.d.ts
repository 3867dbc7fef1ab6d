// The few Deno APIs that deno.ts and deno-ws.ts use, declared by hand so that
// `tsc -p .` can check them next to @types/node and DOM. Deno's own
// lib.deno.d.ts (`deno types`, or the @types/deno package) redeclares DOM and
// web globals and clashes with both. Signatures follow Deno 2's
// lib.deno.d.ts; see https://docs.deno.com/api/deno/.

declare namespace Deno {
  interface NetAddr {
    transport: "tcp" | "udp";
    hostname: string;
    port: number;
  }

  interface ServeHandlerInfo {
    remoteAddr: NetAddr;
  }

  interface HttpServer {
    readonly addr: NetAddr;
    readonly finished: Promise<void>;
    /** Stops listening and resolves when in-flight requests have finished. */
    shutdown(): Promise<void>;
  }

  function serve(options: {
    port?: number;
    hostname?: string;
    signal?: AbortSignal;
    onListen?: (addr: NetAddr) => void;
    onError?: (error: unknown) => Response | Promise<Response>;
    handler: (request: Request, info: ServeHandlerInfo) => Response | Promise<Response>;
  }): HttpServer;

  interface UpgradeWebSocketOptions {
    protocol?: string;
    /** Seconds between pings; a client that does not pong in time is closed. Default 30, 0 disables. */
    idleTimeout?: number;
  }

  function upgradeWebSocket(request: Request, options?: UpgradeWebSocketOptions): { socket: WebSocket; response: Response };

  type Signal = "SIGINT" | "SIGTERM" | "SIGHUP" | "SIGQUIT" | "SIGUSR1" | "SIGUSR2";
  function addSignalListener(signal: Signal, handler: () => void): void;

  function exit(code?: number): never;
  const pid: number;
  function cwd(): string;

  const env: {
    get(key: string): string | undefined;
    toObject(): Record<string, string>;
  };
}

interface ImportMeta {
  /** True in the module Deno was started with. */
  main: boolean;
}
