// Load-generator child process (forked by bench/run.ts, one of several so no
// process holds more than ~8,000 sockets under the 20,000 open-file limit).
// It opens real WebSocket clients to 127.0.0.1 with plain connect() and
// reports over IPC. Times are CLOCK_MONOTONIC milliseconds (process.hrtime),
// comparable across the processes of one machine.
//
// BENCH_CLIENT=ws (default, the `ws` package) or BENCH_CLIENT=global (Node's
// built-in WebSocket); see RESULTS.md for the per-socket cost of each. A URL
// that is http:// (headcount's /sse) opens a Server-Sent Events client
// instead: one GET on a plain TCP socket per visitor, events scanned as they come.
//
// The bench measures visitors, so its clients must look like the browsers
// that visitors use: every handshake carries a browser User-Agent and the
// Origin a page served by the server itself would send. A server that filters
// bots or checks origins then counts these clients as it would count people,
// instead of the bench measuring the cost of refusing them.
import { connect as netConnect } from "node:net";
import process from "node:process";
import WS from "ws";

type Msg = Record<string, unknown> & { cmd: string; id: number };

const IMPL = process.env.BENCH_CLIENT === "global" ? "global" : "ws";
const now = (): number => Number(process.hrtime.bigint()) / 1e6;
const send = (m: Record<string, unknown>) => process.send!(m);

const TOTAL = Buffer.from('"total":');

/** Cheap field extraction: type letter ('h' hello, 'c' count, 'p' pong) and total. */
function parseBuf(b: Buffer): { t: number; total: number } {
  const t = b[9] ?? 0; // {"type":"X
  const i = b.indexOf(TOTAL);
  if (i < 0) return { t, total: -1 };
  let n = 0;
  for (let j = i + 8; j < b.length; j++) {
    const c = b[j]!;
    if (c < 48 || c > 57) break;
    n = n * 10 + (c - 48);
  }
  return { t, total: n };
}
function parseStr(s: string): { t: number; total: number } {
  const t = s.charCodeAt(9);
  const i = s.indexOf('"total":');
  if (i < 0) return { t, total: -1 };
  let n = 0;
  for (let j = i + 8; j < s.length; j++) {
    const c = s.charCodeAt(j);
    if (c < 48 || c > 57) break;
    n = n * 10 + (c - 48);
  }
  return { t, total: n };
}
const H = 104; // 'h'

interface Sock {
  close(): void;
}

interface Handlers {
  open(): void;
  message(t: number, total: number): void;
  close(): void;
}

/**
 * A browser's User-Agent (a client without one is a bot and counts no visit),
 * a different build for each client: from one address, every client is then
 * its own visitor, the costlier case for the day's visitor hashes (issue 13).
 */
let clients = 0;
const userAgent = () => `Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.${++clients}.0 Safari/537.36`;

/** ws://127.0.0.1:port/… → http://127.0.0.1:port: the page's own origin (one server at a time, so one entry). */
let originFor = { url: "", origin: "" };
const originOf = (url: string): string => {
  const slash = url.indexOf("/", url.indexOf("//") + 2);
  const base = slash < 0 ? url : url.slice(0, slash);
  if (originFor.url !== base) {
    const u = new URL(base);
    originFor = { url: base, origin: `${u.protocol === "wss:" ? "https:" : "http:"}//${u.host}` };
  }
  return originFor.origin;
};

const DATA = Buffer.from("data: ");
const HEAD_END = Buffer.from("\r\n\r\n");

/**
 * An event-stream visitor (GET /sse) on a plain TCP socket, as cheap as the
 * WebSocket clients (a heavier client on the same two cores would slow the
 * server it measures): one GET, "open" at a 200, then every `data: ` line's
 * JSON scanned for its type and total with the same field extraction as a
 * frame. Chunked framing (Bun, Deno) is skipped over: each event is written
 * whole. Same-origin EventSource requests carry no Origin, so neither does this.
 */
function connectStream(url: string, h: Handlers): Sock {
  const u = new URL(url);
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    h.close();
  };
  const sock = netConnect(Number(u.port), u.hostname, () => {
    sock.write(`GET ${u.pathname}${u.search} HTTP/1.1\r\nHost: ${u.host}\r\nAccept: text/event-stream\r\nUser-Agent: ${userAgent()}\r\n\r\n`);
  });
  let headers = true;
  let pending: Buffer = Buffer.alloc(0);
  sock.on("data", (chunk: Buffer) => {
    pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
    if (headers) {
      const end = pending.indexOf(HEAD_END);
      if (end < 0) return;
      if (pending.toString("latin1", 9, 12) !== "200") return void sock.destroy();
      headers = false;
      pending = pending.subarray(end + 4);
      h.open();
    }
    let at = 0;
    for (;;) {
      const d = pending.indexOf(DATA, at);
      if (d < 0) {
        at = Math.max(at, pending.length - DATA.length);
        break;
      }
      const nl = pending.indexOf(10, d + DATA.length);
      if (nl < 0) {
        at = d;
        break;
      }
      const p = parseBuf(pending.subarray(d + DATA.length, nl));
      h.message(p.t, p.total);
      at = nl + 1;
    }
    pending = pending.subarray(at);
  });
  sock.on("close", close);
  sock.on("error", () => {});
  return { close: () => sock.destroy() };
}

function connect(url: string, h: Handlers): Sock {
  if (url.startsWith("http")) return connectStream(url, h);
  const origin = originOf(url);
  if (IMPL === "ws") {
    const ws = new WS(url, { perMessageDeflate: false, skipUTF8Validation: true, origin, headers: { "User-Agent": userAgent() } });
    ws.on("open", h.open);
    ws.on("message", (data: Buffer) => {
      const p = parseBuf(data);
      h.message(p.t, p.total);
    });
    ws.on("close", h.close);
    ws.on("error", () => {});
    return { close: () => ws.terminate() };
  }
  // undici's WebSocket (Node's global) takes headers in a second argument
  // that the DOM typings do not describe (undici/types/websocket.d.ts WebSocketInit).
  const init = { headers: { "User-Agent": userAgent(), Origin: origin } } as unknown as string[];
  const ws = new WebSocket(url, init);
  ws.onopen = h.open;
  ws.onmessage = (e) => {
    const p = parseStr(e.data as string);
    h.message(p.t, p.total);
  };
  ws.onclose = h.close;
  ws.onerror = () => {};
  return { close: () => ws.close() };
}

// ---- state ----------------------------------------------------------------
let socks: Sock[] = [];
let msgs = 0;
let opened = 0;
let hellos = 0;
let reached = 0;
let closedEarly = 0;
let maxTotal = new Float64Array(0);
// watch (latency): first time each socket sees total >= watchTarget
let watchTarget = Infinity;
let watchTimes: Float64Array | null = null;
let watchLeft = 0;
let watchDone: (() => void) | null = null;
let progressTimer: ReturnType<typeof setInterval> | null = null;

function progress(extra: Record<string, unknown> = {}): void {
  send({ progress: { opened, hellos, reached, msgs, closed: closedEarly, ...extra } });
}

async function open(m: Msg): Promise<Record<string, unknown>> {
  const base = m.url as string;
  const keys = m.keys as string[];
  const count = m.count as number;
  const target = (m.target as number | null) ?? null;
  const inflightMax = (m.inflight as number) || count;
  const timeoutMs = m.timeoutMs as number;
  const startIdx = socks.length;
  const mt = new Float64Array(startIdx + count);
  mt.set(maxTotal);
  maxTotal = mt;
  const reachedFlag = new Uint8Array(count);
  let firstHello = 0;
  let lastHello = 0;
  let lastOpen = 0;
  let localHellos = 0;
  let localReached = 0;
  let inflight = 0;
  let next = 0;
  const t0 = now();
  let tDone = 0;

  return await new Promise((resolve) => {
    let finished = false;
    const finish = (ok: boolean) => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      tDone = now();
      resolve({ ok, t0, tDone, lastOpen, firstHello, lastHello, hellos: localHellos, reached: localReached, opened, msgs });
    };
    const timer = setTimeout(() => finish(false), timeoutMs);
    const check = () => {
      if (target === null ? localHellos === count : localReached === count) finish(true);
    };
    const start = () => {
      while (inflight < inflightMax && next < count) {
        const i = next++;
        const gi = startIdx + i;
        inflight++;
        let isOpen = false;
        const key = keys[i % keys.length]!;
        const s = connect(`${base}?key=${encodeURIComponent(key)}`, {
          open() {
            isOpen = true;
            opened++;
            lastOpen = now();
            inflight--;
            start();
          },
          message(t, total) {
            msgs++;
            if (t === H) {
              hellos++;
              localHellos++;
              const tn = now();
              if (firstHello === 0) firstHello = tn;
              lastHello = tn;
              if (target === null) check();
            }
            if (total > maxTotal[gi]!) maxTotal[gi] = total;
            if (target !== null && !reachedFlag[i] && total >= target) {
              reachedFlag[i] = 1;
              reached++;
              localReached++;
              check();
            }
            if (watchTimes !== null && total >= watchTarget && Number.isNaN(watchTimes[gi]!)) {
              watchTimes[gi] = now();
              if (--watchLeft === 0) watchDone?.();
            }
          },
          close() {
            closedEarly++;
            if (!isOpen) {
              inflight--;
              start();
            }
          },
        });
        socks.push(s);
      }
    };
    start();
  });
}

async function watch(m: Msg): Promise<Record<string, unknown>> {
  watchTarget = m.target as number;
  watchTimes = new Float64Array(socks.length).fill(NaN);
  watchLeft = socks.length;
  // Already seen (should not happen if armed before the visit)?
  for (let i = 0; i < socks.length; i++) {
    if (maxTotal[i]! >= watchTarget) {
      watchTimes[i] = 0;
      watchLeft--;
    }
  }
  send({ id: m.id, armed: true });
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, m.timeoutMs as number);
    watchDone = () => {
      clearTimeout(timer);
      resolve();
    };
    if (watchLeft === 0) watchDone();
  });
  const times = Array.from(watchTimes);
  watchTimes = null;
  watchDone = null;
  watchTarget = Infinity;
  return { times, missing: watchLeft };
}

/** One visitor: connect, report when its hello arrives, stay open. */
function visit(m: Msg): Promise<Record<string, unknown>> {
  const url = `${m.url as string}?key=${encodeURIComponent(m.key as string)}`;
  const tStart = now();
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve({ ok: false }), m.timeoutMs as number);
    let got = false;
    const s = connect(url, {
      open() {},
      message(t, total) {
        if (t === H && !got) {
          got = true;
          clearTimeout(timer);
          resolve({ ok: true, tStart, tHello: now(), total });
        }
      },
      close() {},
    });
    socks.push({ close: () => s.close() });
    // keep maxTotal aligned with socks (the visitor is not a watcher)
    const mt = new Float64Array(socks.length);
    mt.set(maxTotal.subarray(0, Math.min(maxTotal.length, socks.length)));
    maxTotal = mt;
  });
}

/** Closed loop: each of `concurrency` slots connects, waits for hello, closes, repeats. */
async function sustain(m: Msg): Promise<Record<string, unknown>> {
  const base = m.url as string;
  const keys = m.keys as string[];
  const concurrency = m.concurrency as number;
  const durationMs = m.durationMs as number;
  let visits = 0;
  let attempts = 0;
  let failed = 0;
  const t0 = now();
  const stopAt = t0 + durationMs;
  let active = 0;
  let seed = (m.seed as number) || 1;
  const rnd = () => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed;
  };
  return await new Promise((resolve) => {
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      clearTimeout(hard);
      resolve({ visits, attempts, failed, t0, t1: now() });
    };
    const hard = setTimeout(finish, durationMs + 10_000);
    const slot = () => {
      if (now() >= stopAt) {
        if (active === 0) finish();
        return;
      }
      active++;
      attempts++;
      let settled = false;
      const key = keys[rnd() % keys.length]!;
      const s = connect(`${base}?key=${encodeURIComponent(key)}`, {
        open() {},
        message(t) {
          msgs++;
          if (t === H && !settled) {
            settled = true;
            visits++;
            hellos++;
            s.close();
            active--;
            slot();
          }
        },
        close() {
          if (!settled) {
            settled = true;
            failed++;
            active--;
            setTimeout(slot, 50);
          }
        },
      });
    };
    for (let i = 0; i < concurrency; i++) slot();
  });
}

async function closeAll(): Promise<Record<string, unknown>> {
  const n = socks.length;
  for (const s of socks) s.close();
  socks = [];
  maxTotal = new Float64Array(0);
  msgs = opened = hellos = reached = closedEarly = 0;
  await new Promise((r) => setTimeout(r, 50));
  return { closed: n };
}

process.on("message", (raw) => {
  const m = raw as Msg;
  const reply = (p: Promise<Record<string, unknown>>) =>
    p.then(
      (r) => send({ id: m.id, ...r }),
      (e: unknown) => send({ id: m.id, error: String(e) }),
    );
  switch (m.cmd) {
    case "open":
      if (!progressTimer) progressTimer = setInterval(() => progress(), 500);
      reply(open(m));
      break;
    case "watch":
      reply(watch(m));
      break;
    case "visit":
      reply(visit(m));
      break;
    case "sustain":
      if (!progressTimer) progressTimer = setInterval(() => progress(), 500);
      reply(sustain(m));
      break;
    case "closeAll":
      reply(closeAll());
      break;
    case "stats": {
      const mem = process.memoryUsage();
      const cpu = process.cpuUsage();
      send({ id: m.id, rss: mem.rss, cpuMs: (cpu.user + cpu.system) / 1000, sockets: socks.length, impl: IMPL });
      break;
    }
    case "exit":
      process.exit(0);
  }
});
process.on("disconnect", () => process.exit(0));
send({ ready: true, impl: IMPL });
