import { readdirSync, readFileSync } from "node:fs";

/**
 * The soft open-file limit, from /proc (Linux); undefined elsewhere or when
 * it cannot be read. Node, Bun and Deno expose no getrlimit of their own.
 */
export function openFileLimit(): number | undefined {
  try {
    const m = /^Max open files\s+(\d+)/m.exec(readFileSync("/proc/self/limits", "utf8"));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** Descriptors this process has open now, from /proc (Linux); undefined elsewhere. */
export function openFileCount(): number | undefined {
  try {
    return readdirSync("/proc/self/fd").length;
  } catch {
    return undefined;
  }
}

/**
 * MAX_SOCKETS when unset: below the open-file limit, less the descriptors
 * already open when it is computed (after the store has opened), with room
 * for the database pool, the
 * listening socket, logs, health checks and upgrades in flight (5%, at least
 * 64 descriptors).
 */
export function defaultMaxSockets(limit: number | undefined, inUse: number | undefined = openFileCount()): number {
  if (limit === undefined) return 10_000;
  // Where /proc/self/fd cannot be read (Deno without --allow-all), assume a
  // generous figure for what the runtime and the store hold at start-up.
  return Math.max(16, limit - (inUse ?? UNKNOWN_IN_USE) - Math.max(64, Math.ceil(limit * 0.05)));
}

const UNKNOWN_IN_USE = 128;
