import type { Peer } from "../core/ports.ts";
import type { Session } from "../core/room.ts";

// A visit over Server-Sent Events, where WebSocket upgrades are blocked
// (https://html.spec.whatwg.org/multipage/server-sent-events.html). The
// stream is a streaming Response, so it needs nothing from the runtime: the
// same code serves it on Node, Bun and Deno (bound to the in-process hub) and
// in a key's Durable Object on Workers. To the room it is one more Peer: it
// counts, is online while open and receives the same messages as a socket.
//
//   id: <seq>:<resume token>      the browser sends it back as Last-Event-ID
//   event: hello | count          the message's type
//   data: <the JSON /ws sends>
//
// and `: ` comment lines as keep-alive. A close becomes `event: end` with
// `{"code":…,"reason":…}` (the WebSocket close code) before the stream ends.

export interface EventStreamOptions {
  /** SSE_KEEPALIVE_MS: a comment line this often, well inside common proxy idle timeouts (60 s and up). */
  keepaliveMs: number;
  /** MAX_BUFFERED_BYTES: bytes the reader may leave unread before it is cut, as for a socket. */
  maxBufferedBytes: number;
}

const encoder = new TextEncoder();
const KEEPALIVE = encoder.encode(":\n\n");
/** `"seq":` cannot occur inside a JSON string (its quote would be escaped), so the first match is the field. */
const SEQ = /"seq":(\d+)/;

/** The event a message of the wire protocol becomes, or null for one a stream never carries (pong). */
function eventName(text: string): "hello" | "count" | null {
  if (text.startsWith('{"type":"count"')) return "count";
  if (text.startsWith('{"type":"hello"')) return "hello";
  return null;
}

/**
 * Where a stream's bytes go: a ReadableStream's controller (a streaming
 * Response, every runtime), or the runtime's own response object where going
 * through a ReadableStream costs too much per event (Node: node-stream.ts).
 */
export interface StreamSink {
  /** Bytes written that the client has not taken yet. */
  readonly buffered: number;
  write(chunk: Uint8Array): void;
  /** Ends the response after what was written. */
  end(): void;
  /** Cuts it: a reader too slow to be sent even the end. */
  destroy(reason: string): void;
}

/**
 * One open stream as core sees it. Sends after the end are no-ops. A reader
 * that lets `maxBuffered` bytes pile up is cut without an end event (there
 * is no room left to write one), like a socket that does not read.
 */
export class StreamPeer implements Peer {
  readonly #sink: StreamSink;
  readonly #maxBuffered: number;
  readonly #finish: () => void;
  #token = "";
  #ended = false;

  constructor(sink: StreamSink, maxBuffered: number, finish: () => void) {
    this.#sink = sink;
    this.#maxBuffered = maxBuffered;
    this.#finish = finish;
  }

  get ended(): boolean {
    return this.#ended;
  }

  send(text: string): void {
    const event = eventName(text);
    if (event === null) return;
    this.#write(encoder.encode(`id: ${SEQ.exec(text)?.[1] ?? ""}:${this.#token}\nevent: ${event}\ndata: ${text}\n\n`));
  }

  /** The resume token arrives just before the hello: from then on every event's id carries it. */
  greeted(_visitor: number, resume: string): void {
    this.#token = resume;
  }

  close(code: number, reason: string): void {
    if (this.#ended) return;
    this.#write(encoder.encode(`event: end\ndata: ${JSON.stringify({ code, reason })}\n\n`));
    if (this.#ended) return;
    this.#ended = true;
    this.#sink.end();
    this.#finish();
  }

  keepalive(): void {
    this.#write(KEEPALIVE);
  }

  /** The reader has gone (the request was aborted, the body cancelled, the connection closed). */
  gone(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#finish();
  }

  #write(bytes: Uint8Array): void {
    if (this.#ended) return;
    if (this.#sink.buffered + bytes.byteLength > this.#maxBuffered) {
      this.#ended = true;
      this.#sink.destroy("too slow: events not read");
      this.#finish();
      return;
    }
    this.#sink.write(bytes);
  }
}

/** A sink over a ReadableStream's controller, whose queue (counted in bytes) is what the reader has not taken. */
function controllerSink(controller: ReadableStreamDefaultController<Uint8Array>, highWaterMark: number): StreamSink {
  return {
    get buffered() {
      return highWaterMark - (controller.desiredSize ?? 0);
    },
    write: (chunk) => controller.enqueue(chunk),
    end: () => controller.close(),
    destroy: (reason) => controller.error(new Error(reason)),
  };
}

/** What every stream starts with: a random reconnection delay for EventSource's own reconnects (1-5 s, so a restart's
 * clients spread out), and a comment that gets the headers through buffering proxies at once. */
const preamble = () => encoder.encode(`retry: ${1000 + Math.floor(Math.random() * 4000)}\n: headcount\n\n`);

/** The response headers of every stream. */
export const STREAM_HEADERS: Record<string, string> = {
  "Content-Type": "text/event-stream; charset=utf-8",
  // no-transform: a proxy must not compress (and so buffer) the stream.
  "Cache-Control": "no-store, no-transform",
  // nginx buffers proxied responses unless told not to.
  "X-Accel-Buffering": "no",
};

/**
 * The streams one host holds: one keep-alive timer for all of them (not one
 * per stream), their number, and a way to wait until they have all ended
 * (graceful shutdown closes them through the rooms, like sockets).
 */
export class EventStreams {
  readonly #open = new Set<StreamPeer>();
  readonly #opts: EventStreamOptions;
  #timer: ReturnType<typeof setInterval> | null = null;

  constructor(opts: EventStreamOptions) {
    this.#opts = opts;
  }

  get size(): number {
    return this.#open.size;
  }

  /**
   * A streaming Response for an admitted visit. `join` binds the peer to its
   * room (it may close it at once: a cap, a shutdown) and returns the session
   * that is closed when the stream ends, whichever side ends it. `signal` is
   * the request's: it aborts when the client goes.
   */
  open(join: (peer: StreamPeer) => Session, signal: AbortSignal | undefined, headers: Record<string, string> = {}): Response {
    let gone: (() => void) | null = null;
    const max = this.#opts.maxBufferedBytes;
    const body = new ReadableStream<Uint8Array>(
      {
        start: (controller) => {
          gone = this.attach(join, controllerSink(controller, max));
        },
        cancel: () => gone?.(),
      },
      { highWaterMark: max, size: (chunk) => chunk?.byteLength ?? 0 },
    );
    signal?.addEventListener("abort", () => gone?.(), { once: true });
    return new Response(body, { status: 200, headers: { ...STREAM_HEADERS, ...headers } });
  }

  /**
   * A stream on a sink whose headers are already sent: writes the preamble,
   * joins, and returns what to call when the client goes.
   */
  attach(join: (peer: StreamPeer) => Session, sink: StreamSink): () => void {
    let session: Session | null = null;
    let finished = false;
    const peer = new StreamPeer(sink, this.#opts.maxBufferedBytes, () => {
      if (finished) return;
      finished = true;
      this.#open.delete(peer);
      if (this.#open.size === 0) this.#stopTimer();
      session?.close();
    });
    sink.write(preamble());
    this.#open.add(peer);
    this.#startTimer();
    session = join(peer);
    if (finished) session.close();
    return () => peer.gone();
  }

  /** Resolves once every stream has ended. */
  async drained(): Promise<void> {
    while (this.#open.size > 0) await new Promise((r) => setTimeout(r, 20));
  }

  #startTimer(): void {
    this.#timer ??= setInterval(() => {
      for (const peer of this.#open) peer.keepalive();
    }, this.#opts.keepaliveMs);
  }

  #stopTimer(): void {
    if (this.#timer === null) return;
    clearInterval(this.#timer);
    this.#timer = null;
  }
}
