import type { UpgradeRequest } from "./admission.ts";

// RFC 6455 §4.2.1 checks on the opening handshake, made here so every
// runtime refuses the same requests: Bun's server.upgrade() and
// Deno.upgradeWebSocket() check far less than ws does on Node.

export type HandshakeProblem = { status: 400 | 405 | 426; message: string; headers?: Record<string, string> };

const KEY = /^[A-Za-z0-9+/]{22}==$/; // base64 of 16 bytes

export function handshakeProblem(req: UpgradeRequest): HandshakeProblem | null {
  if (req.method !== "GET") return { status: 405, message: "the WebSocket handshake must be a GET", headers: { Allow: "GET" } };
  const connection = (req.header("connection") ?? "").toLowerCase().split(",").map((t) => t.trim());
  if (!connection.includes("upgrade")) return { status: 400, message: "Connection must include Upgrade" };
  if (req.header("sec-websocket-version") !== "13") {
    return { status: 426, message: "only WebSocket version 13 is spoken", headers: { "Sec-WebSocket-Version": "13" } };
  }
  if (!KEY.test(req.header("sec-websocket-key") ?? "")) return { status: 400, message: "Sec-WebSocket-Key must be 16 bytes of base64" };
  return null;
}
