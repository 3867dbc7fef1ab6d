import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { uniqueKey } from "./helpers/env.ts";
import { anyStoreEnv } from "./helpers/store-env.ts";
import { frame, Op, openNonReaders, RawConn, rawHandshake, type NonReaders } from "./helpers/raw-ws.ts";
import { startServer, type RunningServer, type RuntimeName } from "./helpers/server.ts";
import { sleep, TestSocket } from "./helpers/ws.ts";

// Issue "hostile clients, hostile networks": clients that do not read. A
// socket's unsent bytes are bounded (MAX_BUFFERED_BYTES): a client that opens
// sockets on a busy key and never reads is cut, the server's memory stays
// bounded, and everyone else keeps getting every count. The heartbeat must
// prove a client reads, not only that it writes.
//
// The non-readers come from test/helpers/non-readers.ts (a tiny receive
// buffer and a 536-byte MSS, so the kernel holds a few KiB per socket, not
// the megabyte it autotunes to on loopback): what the server buffers itself
// shows in seconds. The store does not matter here (test/helpers/store-env.ts).

const MAX_BUFFERED = 65_536;
const NON_READERS = 200;
const WATCHERS = 3;

/** The server's resident memory in MiB (/proc/<pid>/status). */
function rssMiB(pid: number): number {
  const kb = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1];
  if (!kb) throw new Error(`no VmRSS for ${pid}`);
  return Number(kb) / 1024;
}

async function counter(s: RunningServer, key: string): Promise<{ total: number; online: number }> {
  const res = await fetch(`${s.url}/api/counters/${encodeURIComponent(key)}`);
  expect(res.status).toBe(200);
  return (await res.json()) as { total: number; online: number };
}

/**
 * Runtime differences. `tcpStaysOpen`: the runtime stops sending to a cut
 * socket but cannot end its TCP connection (expected failure below).
 * `heartbeatCountsWrites`: the runtime's heartbeat is satisfied by anything
 * the client sends, so a client that writes and never reads passes it.
 */
interface Target {
  runtime: RuntimeName;
  tcpStaysOpen?: string;
  heartbeatCountsWrites?: string;
}

const DENO_CLOSE =
  "Deno: WebSocket.close() queues the close frame behind the sends the client never reads, and Deno has no terminate(): the socket stays CLOSING, its TCP connection open, until the client goes away";
const DENO_IDLE =
  "Deno: idleTimeout's timer restarts on every text, binary or pong frame the client sends (unsolicited pongs included), and Deno exposes no ping/pong to the server, so a writer that never reads passes the heartbeat";

const TARGETS: Target[] = [
  { runtime: "node" },
  { runtime: "bun" },
  { runtime: "deno", tcpStaysOpen: DENO_CLOSE, heartbeatCountsWrites: DENO_IDLE },
];

describe.each(TARGETS)("slow readers on $runtime", (target) => {
  let server: RunningServer;
  let nonReaders: NonReaders | undefined;
  const key = `${uniqueKey(`slow-${target.runtime}`)}/${"k".repeat(180)}`;
  const path = `/ws?key=${encodeURIComponent(key)}`;
  /** What the busy-key test saw, for the expected failure below. */
  let seen: { cut: number; online: number } | undefined;

  beforeAll(async () => {
    server = await startServer({
      runtime: target.runtime,
      timeoutMs: 60_000,
      // Only the buffer bound acts on the non-readers: the heartbeat is far away.
      env: { ...anyStoreEnv(target.runtime), MAX_BUFFERED_BYTES: String(MAX_BUFFERED), BROADCAST_INTERVAL_MS: "1", HEARTBEAT_TIMEOUT_MS: "600000" },
    });
  });
  afterAll(async () => {
    await nonReaders?.stop();
    await server?.stop();
  });

  it(`${NON_READERS} sockets that never read on a busy key: the server stops buffering for them, its memory stays bounded, and every watcher gets every count`, async () => {
    const watchers = await Promise.all(Array.from({ length: WATCHERS }, () => TestSocket.join(server.wsUrl(key))));
    nonReaders = await openNonReaders(server.port, path, NON_READERS);
    expect(nonReaders.status.ready).toBe(NON_READERS);
    await expect.poll(async () => (await counter(server, key)).online, { timeout: 10_000 }).toBe(WATCHERS + NON_READERS);
    const before = rssMiB(server.pid);

    // Real visits on the key, as fast as they come: each moves the total and "online", so a count goes out every round.
    let stop = false;
    let visits = 0;
    const drive = async () => {
      while (!stop) {
        const v = await rawHandshake(server.port, path, 20_000);
        visits++;
        v.conn.destroy();
      }
    };
    const drivers = Array.from({ length: 8 }, drive);
    let peak = before;
    const sampler = setInterval(() => (peak = Math.max(peak, rssMiB(server.pid))), 100);
    try {
      // On Node and Bun every non-reader is cut. On Deno the server stops writing to them (they stay
      // connected: see below), so there it runs for as many visits as cut every non-reader elsewhere.
      const enough = () => (target.tcpStaysOpen ? visits >= 2000 : nonReaders!.status.cut === NON_READERS);
      const deadline = Date.now() + 25_000;
      while (!enough() && Date.now() < deadline) await sleep(250);
      // Keep going a moment after the cut: the watchers must keep up.
      await sleep(1000);
    } finally {
      stop = true;
      await Promise.all(drivers);
      clearInterval(sampler);
    }
    const final = await counter(server, key);
    seen = { cut: nonReaders.status.cut, online: final.online };
    console.log(
      `${target.runtime}: ${visits} visits, non-readers cut ${nonReaders.status.cut}/${NON_READERS}, online ${final.online}, RSS ${before.toFixed(0)} → peak ${peak.toFixed(0)} MiB`,
    );

    // Every watcher was shown the final total.
    for (const w of watchers) await w.sock.until((n) => n.total === final.total, 10_000);
    // Memory: at most MAX_BUFFERED_BYTES per non-reader (with the runtime's overhead on it, ×4), plus what a
    // stream of visits costs any server (V8/JSC heap growth, measured at up to ~130 MiB in 10 s on Deno).
    // Without the bound Deno grew by 400 MiB in 10 s here; Node holds one shared frame per pending write, so
    // for Node the cut itself is the test.
    expect(peak - before).toBeLessThan((4 * NON_READERS * MAX_BUFFERED) / 2 ** 20 + 160);
    if (!target.tcpStaysOpen) {
      expect(nonReaders.status.cut).toBe(NON_READERS);
      await expect.poll(async () => (await counter(server, key)).online, { timeout: 5000 }).toBe(WATCHERS);
    }
    await Promise.all(watchers.map((w) => w.sock.close()));
  });

  if (target.tcpStaysOpen) {
    it.fails(`[known ${target.runtime} limitation] the cut non-readers' TCP connections end and they leave online`, () => {
      console.log(`${target.runtime}: ${target.tcpStaysOpen}`);
      expect(seen?.cut).toBe(NON_READERS);
    });
  }
});

describe.each(TARGETS)("heartbeat on $runtime", (target) => {
  let server: RunningServer;
  beforeAll(async () => {
    server = await startServer({ runtime: target.runtime, timeoutMs: 60_000, env: { ...anyStoreEnv(target.runtime), HEARTBEAT_TIMEOUT_MS: "1000" } });
  });
  afterAll(async () => {
    await server?.stop();
  });

  /** A socket on a quiet key that writes every 200 ms (pings, unsolicited pongs, a text ping a second) and never reads. */
  async function writerThatNeverReads(path: string): Promise<{ conn: RawConn; stop: () => void }> {
    const { conn } = await rawHandshake(server.port, path);
    conn.socket.pause();
    let n = 0;
    const timer = setInterval(() => {
      if (conn.ended !== null) return;
      void conn.write(frame({ opcode: Op.ping, payload: "p" }));
      void conn.write(frame({ opcode: Op.pong, payload: Buffer.alloc(8, n) }));
      if (n++ % 5 === 0) void conn.write(frame({ opcode: Op.text, payload: '{"type":"ping"}' }));
    }, 200);
    return { conn, stop: () => clearInterval(timer) };
  }

  let writerCut: boolean | undefined;

  it("a client that writes (pings, unsolicited pongs, messages) but never reads is closed; one that reads stays", async () => {
    const key = uniqueKey(`heartbeat-${target.runtime}`);
    const reader = await TestSocket.join(server.wsUrl(key));
    const writer = await writerThatNeverReads(`/ws?key=${encodeURIComponent(key)}`);
    try {
      await reader.sock.until((n) => n.online === 2);
      // HEARTBEAT_TIMEOUT_MS is 1 s: a socket that answers no ping is gone within about 1.5 s. Allow 4.
      writerCut = await writer.conn.until(() => writer.conn.ended !== null, 4000);
      if (!target.heartbeatCountsWrites) {
        expect(writerCut, "the writer that never reads is still open").toBe(true);
        await reader.sock.until((n) => n.online === 1, 5000);
      }
      // The reader answers every ping: still open, still served.
      expect(reader.sock.ws.readyState).toBe(WebSocket.OPEN);
      reader.sock.ws.send('{"type":"ping"}');
      await reader.sock.waitFor((m) => m.type === "pong", 5000);
    } finally {
      writer.stop();
      writer.conn.destroy();
      await reader.sock.close();
    }
  });

  if (target.heartbeatCountsWrites) {
    it.fails(`[known ${target.runtime} limitation] the heartbeat closes a client that writes but never reads`, () => {
      console.log(`${target.runtime}: ${target.heartbeatCountsWrites}`);
      expect(writerCut).toBe(true);
    });
  }
});
