import type { Readiness } from "../app.ts";
import type { Hub } from "../core/hub.ts";
import type { CounterStore } from "../core/ports.ts";
import { withTimeout } from "./timeout.ts";

/** /readyz: 503 while draining or while the database does not answer within two seconds. */
export function readiness(hub: Hub, store: Pick<CounterStore, "ping">): () => Promise<Readiness> {
  return async () => {
    if (hub.draining) return { ready: false, reason: "shutting down" };
    try {
      await withTimeout(store.ping(), 2000, "database ping");
      return { ready: true };
    } catch (err) {
      return { ready: false, reason: `database unavailable: ${(err as Error).message}` };
    }
  };
}
