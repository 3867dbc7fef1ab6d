// A bounded stream of real WebSocket visitors for fault tests: `clients`
// loops each open a socket, wait for the hello (the visit is acknowledged),
// hold it for `holdMs`, close, and go again until stopped or `maxVisits`.

import { BROWSER_UA } from "./env.ts";

export interface LoadOptions {
  url: () => string;
  clients: number;
  holdMs: number;
  maxVisits?: number;
  /** Keep every socket open instead of cycling (for shutdown tests). */
  hold?: boolean;
}

export interface LoadResult {
  /** Hellos received: visits the server acknowledged. */
  acked: number;
  /** Largest total any client was shown. */
  maxTotal: number;
  /** Close codes seen by sockets that had their hello, by code. */
  closesAfterHello: Map<number, number>;
  /** Close codes seen by sockets refused before a hello. */
  closesBeforeHello: Map<number, number>;
  /** Sockets that failed to open at all (listener gone, refused upgrade). */
  failedOpens: number;
}

export interface Load {
  result: LoadResult;
  /** Stops starting new sockets; waits until every socket has closed or `graceMs` passes. */
  stop(graceMs?: number): Promise<LoadResult>;
  /** Resolves when every open socket has closed (or `timeoutMs` passes). */
  settled(timeoutMs: number): Promise<void>;
}

const bump = (m: Map<number, number>, k: number) => m.set(k, (m.get(k) ?? 0) + 1);

export function startLoad(opts: LoadOptions): Load {
  const result: LoadResult = {
    acked: 0,
    maxTotal: 0,
    closesAfterHello: new Map(),
    closesBeforeHello: new Map(),
    failedOpens: 0,
  };
  let running = true;
  let started = 0;
  const open = new Set<WebSocket>();

  const visit = () =>
    new Promise<void>((resolve) => {
      started++;
      // A browser's User-Agent: without one a visit is a bot's and counts nothing. (undici's WebSocket takes headers
      // in a second argument the DOM typing does not know.)
      const ws = new WebSocket(opts.url(), { headers: { "User-Agent": BROWSER_UA } } as unknown as string[]);
      let opened = false;
      let helloed = false;
      open.add(ws);
      ws.onopen = () => (opened = true);
      ws.onmessage = (e) => {
        const m = JSON.parse(String(e.data)) as { type: string; total?: number };
        if (typeof m.total === "number" && m.total > result.maxTotal) result.maxTotal = m.total;
        if (m.type === "hello" && !helloed) {
          helloed = true;
          result.acked++;
          if (!opts.hold) setTimeout(() => ws.close(), opts.holdMs);
        }
      };
      ws.onclose = (e) => {
        open.delete(ws);
        if (!opened) result.failedOpens++;
        else bump(helloed ? result.closesAfterHello : result.closesBeforeHello, e.code);
        resolve();
      };
    });

  const loop = async () => {
    while (running && (opts.maxVisits === undefined || started < opts.maxVisits)) {
      await visit();
      if (opts.hold) return;
    }
  };
  const loops = Array.from({ length: opts.clients }, () => loop());

  const settled = async (timeoutMs: number) => {
    const deadline = Date.now() + timeoutMs;
    while (open.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  };

  return {
    result,
    settled,
    async stop(graceMs = 10_000) {
      running = false;
      if (opts.hold) for (const ws of open) ws.close();
      await Promise.race([Promise.all(loops), new Promise((r) => setTimeout(r, graceMs))]);
      await settled(graceMs);
      return result;
    },
  };
}
