import type { Logger } from "../core/ports.ts";

export type StopSignal = "SIGTERM" | "SIGINT";

export interface SignalOptions {
  log: Logger;
  /** Registers a listener with the runtime (process.on, Deno.addSignalListener). */
  on(signal: StopSignal, listener: () => void): void;
  /** The graceful shutdown; resolves with the exit code. */
  shutdown(): Promise<number>;
  exit(code: number): void;
  /** Signals to leave alone (a node:cluster worker: its primary relays Ctrl-C as SIGTERM). */
  ignore?: readonly StopSignal[];
}

/** The first SIGTERM/SIGINT shuts down gracefully; a second one exits at once (130). */
export function handleStopSignals(opts: SignalOptions): { readonly stopping: boolean } {
  const state = { stopping: false };
  const stop = (signal: StopSignal) => {
    if (state.stopping) {
      opts.log.warn("second signal: exiting now", { signal });
      opts.exit(130);
      return;
    }
    state.stopping = true;
    opts.log.info("shutting down", { signal });
    void opts.shutdown().then((code) => opts.exit(code));
  };
  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    if (!opts.ignore?.includes(signal)) opts.on(signal, () => stop(signal));
  }
  return state;
}
