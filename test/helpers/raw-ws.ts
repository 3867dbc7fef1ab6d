import { spawn } from "node:child_process";
import { BROWSER_UA } from "./env.ts";
import { createHash, randomBytes } from "node:crypto";
import { connect, type Socket } from "node:net";
import { join } from "node:path";
import { createInterface } from "node:readline";

// Raw TCP for tests that send what no well-behaved client would: hand-written
// HTTP requests and hand-built WebSocket frames (RFC 6455 §5.2), plus a reader
// for what the server answered (an HTTP status, frames, a close code, or the
// connection closing). To 127.0.0.1 only (from any 127.0.0.N).

export const WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/** A fresh Sec-WebSocket-Key: 16 random bytes, base64 (RFC 6455 §4.1). */
export function wsKey(): string {
  return randomBytes(16).toString("base64");
}

export function acceptFor(key: string): string {
  return createHash("sha1").update(key + WS_GUID).digest("base64");
}

export const Op = { continuation: 0x0, text: 0x1, binary: 0x2, close: 0x8, ping: 0x9, pong: 0xa } as const;

export interface FrameSpec {
  opcode: number;
  payload?: Uint8Array | string;
  /** Default true. */
  fin?: boolean;
  /** RSV1..3 as a 3-bit number (4 = RSV1). */
  rsv?: number;
  /** Client frames must be masked; default true. */
  mask?: boolean;
  /** Claim this payload length in the header instead of the real one (the payload sent is still `payload`). */
  claimedLength?: bigint;
}

/** Builds one client frame: FIN/RSV/opcode, 7/16/64-bit length, masking key, masked payload. */
export function frame(spec: FrameSpec): Buffer {
  const payload = typeof spec.payload === "string" ? Buffer.from(spec.payload) : Buffer.from(spec.payload ?? []);
  const fin = spec.fin ?? true;
  const masked = spec.mask ?? true;
  const len = spec.claimedLength ?? BigInt(payload.byteLength);
  const b0 = (fin ? 0x80 : 0) | ((spec.rsv ?? 0) & 7) << 4 | (spec.opcode & 0x0f);
  let head: Buffer;
  if (len < 126n) {
    head = Buffer.from([b0, (masked ? 0x80 : 0) | Number(len)]);
  } else if (len < 65536n) {
    head = Buffer.alloc(4);
    head[0] = b0;
    head[1] = (masked ? 0x80 : 0) | 126;
    head.writeUInt16BE(Number(len), 2);
  } else {
    head = Buffer.alloc(10);
    head[0] = b0;
    head[1] = (masked ? 0x80 : 0) | 127;
    head.writeBigUInt64BE(len, 2);
  }
  if (!masked) return Buffer.concat([head, payload]);
  const maskKey = randomBytes(4);
  const body = Buffer.alloc(payload.byteLength);
  for (let i = 0; i < payload.byteLength; i++) body[i] = payload[i]! ^ maskKey[i & 3]!;
  return Buffer.concat([head, maskKey, body]);
}

/** A close frame's payload: 2-byte code and an optional reason. */
export function closePayload(code: number, reason: string | Uint8Array = ""): Buffer {
  const c = Buffer.alloc(2);
  c.writeUInt16BE(code, 0);
  return Buffer.concat([c, typeof reason === "string" ? Buffer.from(reason) : Buffer.from(reason)]);
}

export interface ServerFrame {
  fin: boolean;
  rsv: number;
  opcode: number;
  masked: boolean;
  payload: Buffer;
}

/** Parses the complete frames at the start of `buf`; `used` is how many bytes they took. */
export function parseFrames(buf: Buffer): { frames: ServerFrame[]; used: number } {
  const frames: ServerFrame[] = [];
  let at = 0;
  for (;;) {
    if (buf.byteLength - at < 2) break;
    const b0 = buf[at]!;
    const b1 = buf[at + 1]!;
    let len = b1 & 0x7f;
    let off = at + 2;
    if (len === 126) {
      if (buf.byteLength - off < 2) break;
      len = buf.readUInt16BE(off);
      off += 2;
    } else if (len === 127) {
      if (buf.byteLength - off < 8) break;
      len = Number(buf.readBigUInt64BE(off));
      off += 8;
    }
    const masked = (b1 & 0x80) !== 0;
    let mask: Buffer | null = null;
    if (masked) {
      if (buf.byteLength - off < 4) break;
      mask = buf.subarray(off, off + 4);
      off += 4;
    }
    if (buf.byteLength - off < len) break;
    const payload = Buffer.from(buf.subarray(off, off + len));
    if (mask) for (let i = 0; i < payload.byteLength; i++) payload[i] = payload[i]! ^ mask[i & 3]!;
    frames.push({ fin: (b0 & 0x80) !== 0, rsv: (b0 >> 4) & 7, opcode: b0 & 0x0f, masked, payload });
    at = off + len;
  }
  return { frames, used: at };
}

export interface HttpHead {
  status: number;
  statusLine: string;
  headers: Record<string, string>;
  /** Bytes taken by the head, CRLFCRLF included. */
  length: number;
}

/** Parses an HTTP/1.x response head at the start of `buf`, or null while it is incomplete or not HTTP. */
export function parseHttpHead(buf: Buffer): HttpHead | null {
  const end = buf.indexOf("\r\n\r\n");
  if (end < 0) return null;
  const lines = buf.subarray(0, end).toString("latin1").split("\r\n");
  const m = /^HTTP\/\d(?:\.\d)? (\d{3})/.exec(lines[0]!);
  if (!m) return null;
  const headers: Record<string, string> = {};
  for (const line of lines.slice(1)) {
    const i = line.indexOf(":");
    if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
  }
  return { status: Number(m[1]), statusLine: lines[0]!, headers, length: end + 4 };
}

/** A raw TCP connection that records everything the server sends and how the connection ended. */
export class RawConn {
  readonly socket: Socket;
  data: Buffer = Buffer.alloc(0);
  /** null while open; "end" for an orderly close (FIN), "reset" for ECONNRESET and other errors. */
  ended: "end" | "reset" | null = null;
  error: string | null = null;
  #waiters: Array<() => void> = [];

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.on("data", (chunk: Buffer) => {
      this.data = Buffer.concat([this.data, chunk]);
      this.#wake();
    });
    socket.on("error", (err: NodeJS.ErrnoException) => {
      this.error = err.code ?? err.message;
      if (this.ended === null) this.ended = "reset";
      this.#wake();
    });
    socket.on("end", () => {
      if (this.ended === null) this.ended = "end";
      this.#wake();
    });
    socket.on("close", () => {
      if (this.ended === null) this.ended = "end";
      this.#wake();
    });
  }

  /** `localAddress` (127.0.0.N: all of 127/8 routes to lo) makes the connection come from another client address. */
  static open(port: number, timeoutMs = 5000, localAddress?: string): Promise<RawConn> {
    return new Promise((resolve, reject) => {
      const socket = connect({ port, host: "127.0.0.1", noDelay: true, localAddress });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`connect to 127.0.0.1:${port} timed out`));
      }, timeoutMs);
      socket.once("connect", () => {
        clearTimeout(timer);
        resolve(new RawConn(socket));
      });
      socket.once("error", (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
  }

  #wake(): void {
    const w = this.#waiters;
    this.#waiters = [];
    for (const f of w) f();
  }

  /** Writes and resolves once flushed (or once the server has closed: a refused write is not an error here). */
  write(bytes: Uint8Array | string): Promise<void> {
    return new Promise((resolve) => {
      if (this.socket.destroyed || !this.socket.writable) return resolve();
      this.socket.write(bytes, () => resolve());
    });
  }

  /** Resolves true as soon as `pred` holds, false after `timeoutMs`. */
  async until(pred: () => boolean, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (pred()) return true;
      const left = deadline - Date.now();
      if (left <= 0) return false;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  get head(): HttpHead | null {
    return parseHttpHead(this.data);
  }

  /** Frames the server sent after the 101 head. */
  get frames(): ServerFrame[] {
    const head = this.head;
    if (!head || head.status !== 101) return [];
    return parseFrames(this.data.subarray(head.length)).frames;
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** A handshake request for `/ws`, with a real Sec-WebSocket-Key unless `headers` overrides it. */
export function upgradeRequest(
  path: string,
  opts: { headers?: Record<string, string | null>; method?: string; version?: string } = {},
): string {
  const headers: Record<string, string | null> = {
    Host: "127.0.0.1",
    Upgrade: "websocket",
    Connection: "Upgrade",
    "Sec-WebSocket-Key": wsKey(),
    "Sec-WebSocket-Version": "13",
    // A browser's: a handshake without a User-Agent is a bot's and counts no visit.
    "User-Agent": BROWSER_UA,
    ...opts.headers,
  };
  const lines = [`${opts.method ?? "GET"} ${path} ${opts.version ?? "HTTP/1.1"}`];
  for (const [k, v] of Object.entries(headers)) if (v !== null) lines.push(`${k}: ${v}`);
  return lines.join("\r\n") + "\r\n\r\n";
}

export interface Handshaken {
  conn: RawConn;
  /** The server's first text frame (the hello), parsed. */
  hello: { type: string; visitor?: number; total?: number; resume?: string };
}

/** Opens a WebSocket over raw TCP, checks Sec-WebSocket-Accept and waits for the hello frame. */
export async function rawHandshake(port: number, path: string, timeoutMs = 5000, localAddress?: string): Promise<Handshaken> {
  const conn = await RawConn.open(port, 5000, localAddress);
  const key = wsKey();
  await conn.write(upgradeRequest(path, { headers: { "Sec-WebSocket-Key": key } }));
  const ok = await conn.until(() => conn.frames.some((f) => f.opcode === Op.text) || conn.ended !== null, timeoutMs);
  const head = conn.head;
  if (!ok || !head || head.status !== 101) {
    conn.destroy();
    throw new Error(`handshake for ${path} failed: ${head?.statusLine ?? "no response"} (ended: ${conn.ended})`);
  }
  if (head.headers["sec-websocket-accept"] !== acceptFor(key)) {
    conn.destroy();
    throw new Error(`bad Sec-WebSocket-Accept ${head.headers["sec-websocket-accept"]}`);
  }
  const text = conn.frames.find((f) => f.opcode === Op.text);
  if (!text) {
    conn.destroy();
    throw new Error(`no hello on ${path}: ${conn.frames.map((f) => f.opcode).join(",")} (ended: ${conn.ended})`);
  }
  return { conn, hello: JSON.parse(text.payload.toString()) as Handshaken["hello"] };
}

/** The close code in a server close frame: a number, "none" for an empty payload. */
export function closeCodeOf(f: ServerFrame): number | "none" {
  return f.payload.byteLength >= 2 ? f.payload.readUInt16BE(0) : "none";
}

/** What the non-reader helper (test/helpers/non-readers.ts) last reported. */
export interface NonReaderStatus {
  ready: number;
  failed: number;
  open: number;
  cut: number;
}

export interface NonReaders {
  status: NonReaderStatus;
  /** Resolves when a report satisfies `pred`; false after `timeoutMs`. */
  until(pred: (s: NonReaderStatus) => boolean, timeoutMs: number): Promise<boolean>;
  /** Closes every socket and ends the helper. */
  stop(): Promise<void>;
}

/**
 * Opens `count` WebSockets to `path` that never read after the handshake and
 * ping now and then (test/helpers/non-readers.ts, run by Bun for the socket
 * options it needs). Resolves once every handshake has been answered.
 */
export async function openNonReaders(port: number, path: string, count: number, pingMs = 300): Promise<NonReaders> {
  const root = decodeURIComponent(new URL("../..", import.meta.url).pathname);
  const proc = spawn(join(root, "node_modules", ".bin", "bun"), [join(root, "test", "helpers", "non-readers.ts"), String(port), path, String(count), String(pingMs)], {
    stdio: ["pipe", "pipe", "inherit"],
  });
  const status: NonReaderStatus = { ready: -1, failed: 0, open: 0, cut: 0 };
  let waiters: Array<() => void> = [];
  const exited = new Promise<void>((resolve) => proc.once("exit", () => resolve()));
  createInterface({ input: proc.stdout! }).on("line", (line) => {
    try {
      Object.assign(status, JSON.parse(line) as Partial<NonReaderStatus>);
    } catch {
      return;
    }
    if (status.ready >= 0 && status.open === 0 && status.cut === 0) status.open = status.ready;
    const w = waiters;
    waiters = [];
    for (const f of w) f();
  });
  const until = async (pred: (s: NonReaderStatus) => boolean, timeoutMs: number): Promise<boolean> => {
    const deadline = Date.now() + timeoutMs;
    while (!pred(status)) {
      const left = deadline - Date.now();
      if (left <= 0 || proc.exitCode !== null) return false;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        waiters.push(() => (clearTimeout(t), resolve()));
      });
    }
    return true;
  };
  if (!(await until((s) => s.ready >= 0, 60_000))) {
    proc.kill("SIGKILL");
    throw new Error("the non-reader helper did not open its sockets");
  }
  return {
    status,
    until,
    stop: async () => {
      proc.stdin!.end();
      const t = setTimeout(() => proc.kill("SIGKILL"), 3000);
      await exited;
      clearTimeout(t);
    },
  };
}
