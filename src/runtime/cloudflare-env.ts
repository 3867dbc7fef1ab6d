import type * as CF from "@cloudflare/workers-types/index.ts";

// The Worker's bindings and vars (wrangler.toml). Types come from the
// importable @cloudflare/workers-types module (`import type`), not its global
// script, so the Workers files type-check in the same `tsc -p .` program as
// the Node entry without the two runtimes' globals colliding.

export interface WorkerEnv {
  ROOMS: CF.DurableObjectNamespace;
  /** One object (cloudflare-index.ts) that every room reports its key's numbers to: top keys, site totals, the admin list. */
  INDEX: CF.DurableObjectNamespace;
  ASSETS?: CF.Fetcher;
  /** When bound, counters live in PostgreSQL through Hyperdrive instead of each object's SQLite. */
  HYPERDRIVE?: CF.Hyperdrive;
  /** Plain-text vars and secrets: BROADCAST_INTERVAL_MS, RESUME_SECRET, LOG_LEVEL, … */
  [name: string]: unknown;
}

/** The string vars of `env`, for core's parseConfig (bindings are objects and are left out). */
export function varsOf(env: WorkerEnv): Record<string, string> {
  const vars: Record<string, string> = {};
  for (const [name, value] of Object.entries(env)) if (typeof value === "string") vars[name] = value;
  return vars;
}
