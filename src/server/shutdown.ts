import type { Hub } from "../core/hub.ts";
import type { Logger } from "../core/ports.ts";
import { withTimeout } from "./timeout.ts";

// Graceful shutdown (DESIGN.md §7), in order: stop listening, commit what is
// pending, close every socket with 1001 so clients reconnect elsewhere, then
// let the rest (bus, webhooks, store) go, all within SHUTDOWN_TIMEOUT_MS.

export interface ShutdownParts {
  hub: Hub;
  log: Logger;
  timeoutMs: number;
  /** Closes the listener (and idle keep-alive connections) so no new request arrives. */
  stopListening(): void;
  /** Resolves when the runtime has seen every socket close. */
  socketsClosed(): Promise<void>;
  /** What else must stop, in order, each given the time left (the bus, webhooks, the store last). */
  after: Array<{ name: string; stop(msLeft: number): Promise<void>; fatal?: boolean }>;
}

/** Resolves with the exit code: 0, or 1 when visits could not be committed or the store failed to close. */
export async function shutdown(p: ShutdownParts): Promise<number> {
  const started = Date.now();
  const deadline = started + p.timeoutMs;
  const left = (cap = Number.POSITIVE_INFINITY) => Math.max(1, Math.min(cap, deadline - Date.now()));
  p.stopListening();
  let code = 0;
  try {
    await withTimeout(p.hub.drain(), Math.max(1, left() - 500), "flushing visits");
  } catch (err) {
    p.log.error("shutdown: pending visits not committed", { err, pending: p.hub.batcher.pendingVisits });
    p.hub.batcher.abandon(new Error("server shutting down"));
    code = 1;
  }
  const closed = p.hub.closeAll();
  await withTimeout(p.socketsClosed(), left(1000), "closing sockets").catch(() => {});
  for (const part of p.after) {
    await withTimeout(part.stop(left()), left(), part.name).catch((err: unknown) => {
      if (!part.fatal) return;
      p.log.error(`shutdown: ${part.name} failed`, { err });
      code = 1;
    });
  }
  p.log.info("shutdown complete", { sockets_closed: closed, ms: Date.now() - started });
  return code;
}
