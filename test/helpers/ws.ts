// A real WebSocket client (the runtime's global WebSocket) that records what
// it receives and lets a test wait for a message or for the close.

import type { CountMessage, HelloMessage } from "../../src/core/protocol.ts";
import { BROWSER_UA } from "./env.ts";

// The wire types are the server's own (one shape on every runtime).
export type Hello = HelloMessage;
export type Count = CountMessage;
export type Received = Hello | Count | { type: "pong" };

export interface Closed {
  code: number;
  reason: string;
}

export class TestSocket {
  readonly messages: Received[] = [];
  readonly closed: Promise<Closed>;
  readonly ws: WebSocket;
  #waiters: Array<() => void> = [];

  private constructor(ws: WebSocket) {
    this.ws = ws;
    this.closed = new Promise((resolve) => {
      ws.addEventListener("close", (e) => {
        resolve({ code: e.code, reason: e.reason });
        this.#wake();
      });
    });
    ws.addEventListener("message", (e) => {
      this.messages.push(JSON.parse(String(e.data)) as Received);
      this.#wake();
    });
  }

  /** Opens with a browser's User-Agent unless `headers` says otherwise (a client without one is a bot, not a visit). */
  static open(url: string, timeoutMs = 10_000, headers: Record<string, string> = {}): Promise<TestSocket> {
    return new Promise((resolve, reject) => {
      // undici's WebSocket (Node's global) takes headers in a second argument; the DOM typing does not know it.
      const init = { headers: { "User-Agent": BROWSER_UA, ...headers } } as unknown as string[];
      const ws = new WebSocket(url, init);
      const sock = new TestSocket(ws);
      const timer = setTimeout(() => reject(new Error(`WebSocket ${url} did not open`)), timeoutMs);
      ws.addEventListener("open", () => {
        clearTimeout(timer);
        resolve(sock);
      });
      ws.addEventListener("error", () => {
        clearTimeout(timer);
        reject(new Error(`WebSocket ${url} failed to open`));
      });
    });
  }

  /** Opens and waits for the hello, the moment the visit is committed. */
  static async join(url: string, timeoutMs = 10_000, headers?: Record<string, string>): Promise<{ sock: TestSocket; hello: Hello }> {
    const sock = await TestSocket.open(url, timeoutMs, headers);
    return { sock, hello: await sock.hello(timeoutMs) };
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w();
  }

  /** Resolves with the first message (already received or future) matching `pred`. */
  async waitFor<T extends Received>(pred: (m: Received) => m is T, timeoutMs?: number): Promise<T>;
  async waitFor(pred: (m: Received) => boolean, timeoutMs?: number): Promise<Received>;
  async waitFor(pred: (m: Received) => boolean, timeoutMs = 10_000): Promise<Received> {
    const deadline = Date.now() + timeoutMs;
    let from = 0;
    for (;;) {
      for (; from < this.messages.length; from++) if (pred(this.messages[from]!)) return this.messages[from]!;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no matching message within ${timeoutMs} ms; got ${JSON.stringify(this.messages)}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  hello(timeoutMs = 10_000): Promise<Hello> {
    return this.waitFor((m): m is Hello => m.type === "hello", timeoutMs);
  }

  /** The latest numbers this client has been shown. */
  get latest(): { total: number; online: number } | undefined {
    for (let i = this.messages.length - 1; i >= 0; i--) {
      const m = this.messages[i]!;
      if (m.type !== "pong") return { total: m.total, online: m.online };
    }
    return undefined;
  }

  /** Waits until the latest numbers satisfy `pred`. */
  async until(pred: (n: { total: number; online: number }) => boolean, timeoutMs = 10_000): Promise<{ total: number; online: number }> {
    await this.waitFor((m) => m.type !== "pong" && pred(m), timeoutMs);
    const deadline = Date.now() + timeoutMs;
    // A later message may already have moved on; wait until the latest matches.
    while (!pred(this.latest!)) {
      if (Date.now() > deadline) throw new Error(`latest ${JSON.stringify(this.latest)} never matched`);
      await new Promise((r) => setTimeout(r, 20));
    }
    return this.latest!;
  }

  close(): Promise<Closed> {
    this.ws.close();
    return this.closed;
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
