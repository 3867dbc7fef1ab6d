// A real Server-Sent Events client for the tests: fetch with a streaming
// body reader, parsed as the HTML standard's event-stream format
// (https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation).
// Same surface as TestSocket (messages, waitFor, hello, until, latest,
// close), so one test can run over either transport.

import { BROWSER_UA } from "./env.ts";
import type { Closed, Hello, Received } from "./ws.ts";

export interface StreamEvent {
  event: string;
  data: string;
  id: string;
}

/** The /sse URL for a key on a server's base URL (http://127.0.0.1:port). */
export function sseUrl(base: string, key = "/", resume?: string): string {
  return `${base}/sse?key=${encodeURIComponent(key)}${resume ? `&resume=${encodeURIComponent(resume)}` : ""}`;
}

/** The stream was refused before it started: its HTTP status and JSON body. */
export class StreamRefused extends Error {
  readonly status: number;
  readonly body: string;
  readonly headers: Headers;
  constructor(status: number, body: string, headers: Headers) {
    super(`event stream refused: ${status} ${body}`);
    this.status = status;
    this.body = body;
    this.headers = headers;
  }
}

export class TestStream {
  readonly messages: Received[] = [];
  /** Every event as received, `end` included. */
  readonly events: StreamEvent[] = [];
  /** Comment lines (keep-alives) seen. */
  comments = 0;
  /** The `retry:` the server asked for. */
  retryMs: number | null = null;
  /** Resolves when the stream ends: the end event's code and reason, 1006 when it ended without one. */
  readonly closed: Promise<Closed>;
  readonly response: Response;
  readonly #abort: AbortController;
  #waiters: Array<() => void> = [];
  #end: Closed | null = null;

  private constructor(response: Response, abort: AbortController) {
    this.response = response;
    this.#abort = abort;
    this.closed = this.#read();
  }

  /** Opens the stream; rejects with StreamRefused on any status but 200. */
  static async open(url: string, opts: { headers?: Record<string, string>; timeoutMs?: number } = {}): Promise<TestStream> {
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(new Error(`event stream ${url} did not answer`)), opts.timeoutMs ?? 10_000);
    let res: Response;
    try {
      // A browser's User-Agent unless the test says otherwise: a client without one is a bot, not a visit.
      res = await fetch(url, { headers: { Accept: "text/event-stream", "User-Agent": BROWSER_UA, ...opts.headers }, signal: abort.signal });
    } finally {
      clearTimeout(timer);
    }
    if (res.status !== 200) throw new StreamRefused(res.status, await res.text(), res.headers);
    return new TestStream(res, abort);
  }

  /** Opens and waits for the hello, the moment the visit is committed. */
  static async join(url: string, timeoutMs = 10_000, headers?: Record<string, string>): Promise<{ sock: TestStream; hello: Hello }> {
    const sock = await TestStream.open(url, { timeoutMs, headers });
    return { sock, hello: await sock.hello(timeoutMs) };
  }

  async #read(): Promise<Closed> {
    const reader = this.response.body!.pipeThrough(new TextDecoderStream()).getReader();
    let buffered = "";
    let event = { event: "", data: [] as string[], id: "" };
    let lastId = "";
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        buffered += value;
        let nl: number;
        while ((nl = buffered.search(/\r\n|\r|\n/)) >= 0) {
          const line = buffered.slice(0, nl);
          buffered = buffered.slice(nl + (buffered.startsWith("\r\n", nl) ? 2 : 1));
          if (line === "") {
            if (event.data.length > 0) this.#dispatch({ event: event.event || "message", data: event.data.join("\n"), id: lastId });
            event = { event: "", data: [], id: "" };
            continue;
          }
          if (line.startsWith(":")) {
            this.comments++;
            continue;
          }
          const colon = line.indexOf(":");
          const field = colon < 0 ? line : line.slice(0, colon);
          const raw = colon < 0 ? "" : line.slice(colon + 1);
          const v = raw.startsWith(" ") ? raw.slice(1) : raw;
          if (field === "event") event.event = v;
          else if (field === "data") event.data.push(v);
          else if (field === "id" && !v.includes("\0")) lastId = v;
          else if (field === "retry" && /^\d+$/.test(v)) this.retryMs = Number(v);
        }
      }
    } catch {
      // aborted by close(), or the connection was cut
    }
    this.#wake();
    return this.#end ?? { code: this.#abort.signal.aborted ? 1000 : 1006, reason: "stream ended" };
  }

  #dispatch(e: StreamEvent): void {
    this.events.push(e);
    if (e.event === "end") this.#end = JSON.parse(e.data) as Closed;
    else this.messages.push(JSON.parse(e.data) as Received);
    this.#wake();
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w();
  }

  /** The id the browser would send back as Last-Event-ID. */
  get lastEventId(): string {
    return this.events.filter((e) => e.event !== "end").at(-1)?.id ?? "";
  }

  async waitFor(pred: (m: Received) => boolean, timeoutMs = 10_000): Promise<Received> {
    const deadline = Date.now() + timeoutMs;
    let from = 0;
    for (;;) {
      for (; from < this.messages.length; from++) if (pred(this.messages[from]!)) return this.messages[from]!;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no matching event within ${timeoutMs} ms; got ${JSON.stringify(this.messages)}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  async hello(timeoutMs = 10_000): Promise<Hello> {
    return (await this.waitFor((m) => m.type === "hello", timeoutMs)) as Hello;
  }

  get latest(): { total: number; online: number } | undefined {
    for (let i = this.messages.length - 1; i >= 0; i--) {
      const m = this.messages[i]!;
      if (m.type !== "pong") return { total: m.total, online: m.online };
    }
    return undefined;
  }

  async until(pred: (n: { total: number; online: number }) => boolean, timeoutMs = 10_000): Promise<{ total: number; online: number }> {
    await this.waitFor((m) => m.type !== "pong" && pred(m), timeoutMs);
    const deadline = Date.now() + timeoutMs;
    while (!pred(this.latest!)) {
      if (Date.now() > deadline) throw new Error(`latest ${JSON.stringify(this.latest)} never matched`);
      await new Promise((r) => setTimeout(r, 20));
    }
    return this.latest!;
  }

  /** Goes away as a browser tab does: the connection is dropped. */
  close(): Promise<Closed> {
    this.#abort.abort();
    return this.closed;
  }
}
