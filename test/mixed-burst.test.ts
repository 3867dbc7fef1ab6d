import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Client } from "../bench/lib.ts";
import { uniqueKey } from "./helpers/env.ts";
import { startServer, type RunningServer } from "./helpers/server.ts";

// One burst of 5,000 visitors on one key, half on WebSockets and half on
// Server-Sent Events, as when part of an audience sits behind a proxy that
// blocks upgrades: every visit is counted once, every client of either kind
// sees the final total, and online counts all of them. The visitors are the
// benchmark's load generator (bench/client.ts), one child process per
// transport (2,500 connections each, well under the open-file limit).
// On Node, the default runtime (`npm start`), with the embedded store; the
// bench compares the transports' speed (`--only=burst,burst-sse`).

const N = 5000;

describe("a burst mixing WebSocket and SSE visitors on Node", () => {
  let server: RunningServer;
  let sockets: Client;
  let streams: Client;

  beforeAll(async () => {
    sockets = new Client("ws");
    streams = new Client("ws");
    [server] = await Promise.all([startServer({ runtime: "node", env: { BROADCAST_INTERVAL_MS: "100" } }), sockets.ready, streams.ready]);
  });
  afterAll(async () => {
    for (const c of [sockets, streams]) c?.exit();
    await server?.stop();
  });

  it(`${N} visitors, half on each transport: each counted once, every client sees the final total, online counts both`, async () => {
    const key = uniqueKey("mixed-burst");
    const open = (client: Client, url: string) =>
      client.call("open", { url, keys: [key], count: N / 2, target: N, inflight: 128, timeoutMs: 100_000 });
    const [ws, sse] = await Promise.all([open(sockets, `ws://127.0.0.1:${server.port}/ws`), open(streams, `${server.url}/sse`)]);
    expect({ ok: ws.ok, hellos: ws.hellos, reached: ws.reached }).toEqual({ ok: true, hellos: N / 2, reached: N / 2 });
    expect({ ok: sse.ok, hellos: sse.hellos, reached: sse.reached }).toEqual({ ok: true, hellos: N / 2, reached: N / 2 });
    const res = await fetch(`${server.url}/api/counters?key=${encodeURIComponent(key)}`);
    expect(await res.json()).toMatchObject({ key, total: N, online: N });
    await Promise.all([sockets.call("closeAll"), streams.call("closeAll")]);
    await expect
      .poll(async () => ((await (await fetch(`${server.url}/api/counters?key=${encodeURIComponent(key)}`)).json()) as { online: number }).online, { timeout: 30_000 })
      .toBe(0);
  }, 150_000);
});
