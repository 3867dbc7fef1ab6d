import { randomBytes } from "node:crypto";
import { ConfigError } from "../core/errors.ts";
import type { RuntimeParts } from "../server/compose.ts";
import { systemClock } from "./clock.ts";
import { defaultMaxSockets, openFileLimit } from "./fd-limit.ts";
import { hmacHex, hmacSigner, randomSecret, visitorMac } from "./signer.ts";

// What Node, Bun and Deno bring to the composition alike: the clock, the
// HMAC signer, random secrets, the default socket cap from the open-file
// limit, and the one way a failed start-up is reported.

export const PUBLIC_DIR = decodeURIComponent(new URL("../../public", import.meta.url).pathname);

type Shared = Pick<RuntimeParts, "clock" | "signer" | "hmac" | "visitorMac" | "randomSecret" | "instanceId" | "defaultMaxSockets">;

/** `fdLimit`: the open-file limit where /proc cannot tell (Deno's task passes `ulimit -n`). */
export function nodeParts(fdLimit?: number): Shared {
  return {
    clock: systemClock,
    signer: hmacSigner,
    hmac: hmacHex,
    visitorMac,
    randomSecret,
    instanceId: randomBytes(6).toString("hex"),
    defaultMaxSockets: () => defaultMaxSockets(openFileLimit() ?? fdLimit),
  };
}

/** Logs one JSON line naming what failed and exits: 2 for a bad setting, 1 otherwise. */
export function exitOnStartupFailure(write: (line: string) => void, exit: (code: number) => void): (err: unknown) => void {
  return (err) => {
    const message = err instanceof Error ? err.message : String(err);
    write(JSON.stringify({ time: new Date().toISOString(), level: "error", msg: "startup failed", err: message }));
    exit(err instanceof ConfigError ? 2 : 1);
  };
}
