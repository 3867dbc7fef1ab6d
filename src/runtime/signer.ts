import { createHmac, randomBytes } from "node:crypto";
import type { Signer } from "../core/ports.ts";

// node:crypto rather than crypto.subtle: HMAC is needed synchronously, once per
// visit, and Node, Bun, Deno and Workers (nodejs_compat) all provide it.

export function hmacSigner(secret: string): Signer {
  return {
    sign: (message) => createHmac("sha256", secret).update(message).digest("base64url").slice(0, 22),
  };
}

export function randomSecret(): string {
  return randomBytes(32).toString("base64url");
}

/** HMAC-SHA256, hex: the webhook signature (core/webhook-worker.ts). */
export function hmacHex(secret: string, message: string): string {
  return createHmac("sha256", secret).update(message).digest("hex");
}

/** The day's visitor hash (core/visitors.ts): HMAC-SHA256 under the day's salt, its first 64 bits in hex. */
export function visitorMac(salt: string, message: string): string {
  return createHmac("sha256", salt).update(message).digest("hex").slice(0, 16);
}
