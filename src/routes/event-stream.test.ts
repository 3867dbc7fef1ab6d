import { describe, expect, it } from "vitest";
import type { Session } from "../core/room.ts";
import { EventStreams, type StreamPeer } from "./event-stream.ts";

// The stream itself, without a server: what a reader receives, the end
// event, keep-alives, and the slow-reader bound (a body nobody reads fills
// the stream's own queue, which is what a runtime that honours back-pressure
// leaves behind when the client stops reading).

function session(): Session & { closed: number } {
  return {
    key: "/",
    closed: 0,
    message() {},
    close() {
      this.closed++;
    },
  };
}

const HELLO = '{"type":"hello","key":"/","total":3,"online":1,"visitor":3,"resume":"3.99.mac","seq":7}';
const COUNT = '{"type":"count","key":"/","total":4,"online":2,"seq":8}';

async function text(res: Response): Promise<string> {
  return new TextDecoder().decode(await res.arrayBuffer());
}

describe("event streams", () => {
  it("writes hello and count as events whose id is seq and token, then an end event", async () => {
    const streams = new EventStreams({ keepaliveMs: 60_000, maxBufferedBytes: 65_536 });
    const s = session();
    let peer!: StreamPeer;
    const res = streams.open((p) => {
      peer = p;
      return s;
    }, undefined);
    peer.greeted(3, "3.99.mac");
    peer.send(HELLO);
    peer.send(COUNT);
    peer.send('{"type":"pong"}');
    peer.close(1001, "server shutting down");
    peer.send(COUNT); // after the end: nothing
    expect(res.headers.get("content-type")).toBe("text/event-stream; charset=utf-8");
    const body = await text(res);
    expect(body).toMatch(/^retry: \d{4}\n: headcount\n\n/);
    expect(body.slice(body.indexOf("\n\n") + 2)).toBe(
      `id: 7:3.99.mac\nevent: hello\ndata: ${HELLO}\n\n` +
        `id: 8:3.99.mac\nevent: count\ndata: ${COUNT}\n\n` +
        `event: end\ndata: {"code":1001,"reason":"server shutting down"}\n\n`,
    );
    expect(s.closed).toBe(1);
    expect(streams.size).toBe(0);
    await streams.drained();
  });

  it("a peer closed while joining (a cap, a shutdown) ends at once and its session is closed", async () => {
    const streams = new EventStreams({ keepaliveMs: 60_000, maxBufferedBytes: 65_536 });
    const s = session();
    const res = streams.open((p) => {
      p.close(1013, "server is at its socket limit");
      return s;
    }, undefined);
    expect(await text(res)).toMatch(/event: end\ndata: \{"code":1013,"reason":"server is at its socket limit"\}\n\n$/);
    expect(s.closed).toBe(1);
    expect(streams.size).toBe(0);
  });

  it("sends keep-alive comments on one timer, and stops it when the last stream goes", async () => {
    const streams = new EventStreams({ keepaliveMs: 20, maxBufferedBytes: 65_536 });
    const s = session();
    const abort = new AbortController();
    const res = streams.open(() => s, abort.signal);
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
    let seen = "";
    while ((seen.match(/^:\n\n/gm) ?? []).length < 2) seen += (await reader.read()).value ?? "";
    // The client goes: the request's signal aborts.
    abort.abort();
    expect(s.closed).toBe(1);
    expect(streams.size).toBe(0);
    await reader.cancel();
  });

  it("a cancelled body (the connection dropped) closes the session once", async () => {
    const streams = new EventStreams({ keepaliveMs: 60_000, maxBufferedBytes: 65_536 });
    const s = session();
    const res = streams.open(() => s, undefined);
    await res.body!.cancel();
    expect(s.closed).toBe(1);
    expect(streams.size).toBe(0);
  });

  it("cuts a reader that leaves MAX_BUFFERED_BYTES unread, without buffering more", async () => {
    const streams = new EventStreams({ keepaliveMs: 60_000, maxBufferedBytes: 16_384 });
    const s = session();
    let peer!: StreamPeer;
    const res = streams.open((p) => {
      peer = p;
      return s;
    }, undefined);
    peer.greeted(3, "3.99.mac");
    let sent = 0;
    while (!peer.ended && sent < 10_000) {
      peer.send(COUNT);
      sent++;
    }
    expect(peer.ended).toBe(true);
    // About 16 KiB of ~100-byte events went in before the cut.
    expect(sent).toBeGreaterThan(100);
    expect(sent).toBeLessThan(200);
    expect(s.closed).toBe(1);
    expect(streams.size).toBe(0);
    await expect(res.arrayBuffer()).rejects.toThrow(/too slow/);
  });
});
