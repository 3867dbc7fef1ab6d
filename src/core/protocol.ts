// The wire protocol (DESIGN.md §4): one shape on every runtime, used by the
// page, the widget, the tests and the benchmark.

export interface HelloMessage {
  type: "hello";
  key: string;
  total: number;
  online: number;
  /** Today's (UTC) distinct visitors of the key. */
  visitors: number;
  /** This visit's number; 0 for a bot (not counted). */
  visitor: number;
  resume: string;
  seq: number;
}

export interface CountMessage {
  type: "count";
  key: string;
  total: number;
  online: number;
  visitors: number;
  seq: number;
  /** Present after an administrator set the total: accept it even if it is lower. */
  reset?: true;
}

export interface PongMessage {
  type: "pong";
}

export type ServerMessage = HelloMessage | CountMessage | PongMessage;
export type ClientMessage = { type: "ping" };

export const CloseCode = {
  normal: 1000,
  goingAway: 1001,
  unsupportedData: 1003,
  policy: 1008,
  tooBig: 1009,
  internal: 1011,
  tryAgainLater: 1013,
} as const;

/** Client messages are tiny; anything larger is abuse. */
export const MAX_CLIENT_MESSAGE_BYTES = 512;

export function encode(message: ServerMessage): string {
  return JSON.stringify(message);
}

export const PONG = encode({ type: "pong" });

export type ParseResult =
  | { ok: true; message: ClientMessage }
  | { ok: false; code: number; reason: string };

/** `data` is the text of a text frame, or null for a binary frame. */
export function parseClientMessage(data: string | null, byteLength: number): ParseResult {
  if (byteLength > MAX_CLIENT_MESSAGE_BYTES) {
    return { ok: false, code: CloseCode.tooBig, reason: "message too big" };
  }
  if (data === null) return { ok: false, code: CloseCode.unsupportedData, reason: "binary messages are not accepted" };
  let parsed: unknown;
  try {
    parsed = JSON.parse(data);
  } catch {
    return { ok: false, code: CloseCode.unsupportedData, reason: "message is not JSON" };
  }
  if (typeof parsed === "object" && parsed !== null && (parsed as { type?: unknown }).type === "ping") {
    return { ok: true, message: { type: "ping" } };
  }
  return { ok: false, code: CloseCode.unsupportedData, reason: "unknown message type" };
}
