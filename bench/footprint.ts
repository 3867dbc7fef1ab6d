// Scenario "footprint": what a server costs to start and to keep, and whether
// it fits a small container. Per design and run: spawn → /readyz 200 on a
// fresh data directory and again on a restart over the same directory, peak
// RSS of each start (VmHWM at ready), idle RSS after a settle (VmRSS), and RSS
// with N idle sockets held (every one has had its hello). Then, once per
// design, the same server started inside a memory cgroup (bench/cgroup.ts)
// must become ready, serve the page, count a visit and hold M sockets without
// an OOM kill. A failed step is reported as failed, never skipped over.
import { rmSync } from "node:fs";
import { inCgroup, waitReady, type Command } from "../test/helpers/launch.ts";
import { cgroupUnavailable, createCgroup, type Cgroup } from "./cgroup.ts";
import { Client, freshDataDir, median, peakRssKb, rssKb, settledRssKb, sleep, startServer, type Design, type Server } from "./lib.ts";

export interface FootprintOptions {
  runs: number;
  /** Wait after ready before reading idle RSS. */
  settleMs: number;
  /** Idle sockets held for "RSS with N sockets". */
  holdN: number;
  /** Sockets the server must hold inside the cgroup. */
  cgroupN: number;
  cgroupMb: number;
  /** How many times the cgroup check runs per design. */
  cgroupRuns: number;
  inflight: number;
}

export interface FootprintContext {
  clients: Client[];
  visitor: Client;
  env(extra?: Record<string, string>): Record<string, string>;
  freshKey(tag: string): string;
  setLabel(s: string): void;
  note(s: string): void;
  save(): void;
  closeAll(): Promise<void>;
}

// deno-lint-ignore no-explicit-any
type Row = Record<string, any>;

function split(n: number, parts: number): number[] {
  const base = Math.floor(n / parts);
  return Array.from({ length: parts }, (_, i) => base + (i < n % parts ? 1 : 0));
}

const mb = (kb: number) => kb / 1024;

/** One line for a table: the error's first line and, for a start-up failure, the server's last log line (its reason). */
function summary(err: unknown): string {
  const lines = String((err as Error)?.message ?? err).split("\n").filter((l) => l.trim() !== "");
  let text = lines[0]!.replace(/:$/, "");
  const last = lines.length > 1 ? lines[lines.length - 1]! : undefined;
  if (last) {
    let reason = last;
    try {
      const rec = JSON.parse(last) as { msg?: string; err?: unknown };
      reason = [rec.msg, typeof rec.err === "string" ? rec.err : JSON.stringify(rec.err)].filter(Boolean).join(": ");
    } catch {
      /* not JSON: the line as it is */
    }
    text += `: ${reason}`;
  }
  return text.slice(0, 300);
}
async function exitOf(s: Server): Promise<string> {
  if (s.alive()) return "";
  const e = await s.exited;
  return `; server exited (${e.signal ?? `code ${e.code}`})`;
}

/** Spawn → ready: /readyz 200 for headcount, the listening line for a baseline (it has no /readyz). */
async function timedStart(d: Design, ctx: FootprintContext, dataDir: string | undefined, wrap?: (c: Command) => Command) {
  const server = await startServer(d, ctx.env(), { dataDir, wrap });
  try {
    const readyAt = d.headcount ? await waitReady(server, 60_000) : server.listeningAt;
    return { server, readyMs: readyAt - server.spawnedAt, peakKb: peakRssKb(server.pid) };
  } catch (err) {
    await server.kill();
    throw err;
  }
}

/** Opens `n` sockets on one fresh key across the load processes; resolves with how many got their hello. */
async function hold(ctx: FootprintContext, server: Server, n: number, inflight: number, timeoutMs: number): Promise<{ hellos: number; ok: boolean }> {
  const key = ctx.freshKey("footprint-hold");
  const parts = split(n, ctx.clients.length);
  const opened = Promise.all(ctx.clients.map((c, i) => c.call("open", { url: server.wsUrl, keys: [key], count: parts[i], target: null, inflight, timeoutMs })));
  // A server that dies mid-way fails the step now rather than at the clients' timeout.
  const res = await Promise.race([opened, server.exited.then(() => null)]);
  if (res === null) {
    const hellos = ctx.clients.reduce((a, c) => a + c.progress.hellos, 0);
    return { hellos, ok: false };
  }
  const hellos = res.reduce((a, r) => a + (r.hellos as number), 0);
  return { hellos, ok: res.every((r) => r.ok) && hellos === n };
}

async function footprintOnce(d: Design, ctx: FootprintContext, o: FootprintOptions, run: number): Promise<Row> {
  const dir = d.store === "embedded" ? freshDataDir() : undefined;
  const row: Row = { run };
  try {
    ctx.setLabel(`footprint ${d.name} run ${run + 1}/${o.runs}: fresh start`);
    const first = await timedStart(d, ctx, dir);
    row.store = first.server.listening.store ?? d.store;
    row.readyMsFresh = first.readyMs;
    row.peakMbFresh = mb(first.peakKb);
    await sleep(o.settleMs);
    row.idleMbFresh = mb(rssKb(first.server.pid));
    const stopped = await first.server.stop(15_000);
    if (stopped.code !== 0) row.stopProblem = `first server stopped with ${stopped.signal ?? `code ${stopped.code}`}`;

    ctx.setLabel(`footprint ${d.name} run ${run + 1}/${o.runs}: restart`);
    const second = await timedStart(d, ctx, dir);
    try {
      row.readyMsRestart = second.readyMs;
      row.peakMbRestart = mb(second.peakKb);
      await sleep(o.settleMs);
      const idleKb = rssKb(second.server.pid);
      row.idleMbRestart = mb(idleKb);
      ctx.setLabel(`footprint ${d.name} run ${run + 1}/${o.runs}: ${o.holdN} sockets`);
      const h = await hold(ctx, second.server, o.holdN, o.inflight, 120_000);
      row.held = h.hellos;
      if (h.ok) {
        await sleep(500);
        const heldKb = await settledRssKb(second.server.pid);
        row.holdMb = mb(heldKb);
        row.kibPerSocket = (heldKb - idleKb) / o.holdN;
      } else {
        row.error = `held ${h.hellos} of ${o.holdN} sockets${await exitOf(second.server)}`;
      }
    } finally {
      await second.server.kill();
      await ctx.closeAll();
    }
  } catch (err) {
    row.error = summary(err);
  } finally {
    if (dir) rmSync(dir, { recursive: true, force: true });
  }
  return row;
}

interface Step {
  step: string;
  ok: boolean;
  detail: string;
}

const STEPS = ["ready", "serves the page", "counts a visit", "holds the sockets", "no OOM kill"] as const;

async function cgroupOnce(d: Design, ctx: FootprintContext, o: FootprintOptions, run: number): Promise<Row> {
  const steps: Step[] = [];
  const row: Row = { design: d.name, store: d.store, run, limitMb: o.cgroupMb, sockets: o.cgroupN, steps };
  let cg: Cgroup;
  try {
    cg = createCgroup(o.cgroupMb);
  } catch (err) {
    row.unavailable = `could not create a memory cgroup: ${(err as Error).message}`;
    return row;
  }
  row.swappiness0 = cg.swappinessSet;
  const dir = d.store === "embedded" ? freshDataDir() : undefined;
  let server: Server | undefined;
  let step: (typeof STEPS)[number] = STEPS[0];
  const label = `footprint ${d.name}: in a ${o.cgroupMb} MiB cgroup`;
  try {
    ctx.setLabel(`${label}: start`);
    server = await startServer(d, ctx.env(), { dataDir: dir, wrap: (c) => inCgroup(c, cg.dir), timeoutMs: 60_000 });
    const s = server;
    row.store = s.listening.store ?? d.store;
    row.readyMs = (await waitReady(s, 60_000)) - s.spawnedAt;
    steps.push({ step, ok: true, detail: `${Math.round(row.readyMs)} ms` });

    step = STEPS[1];
    const page = await fetch(`${s.url}/`);
    const type = page.headers.get("content-type") ?? "";
    const body = await page.text();
    if (page.status !== 200 || !type.includes("text/html") || !/<html/i.test(body)) throw new Error(`GET / answered ${page.status} ${type}`);
    steps.push({ step, ok: true, detail: `GET / 200, ${body.length} bytes of HTML` });

    step = STEPS[2];
    const key = ctx.freshKey("cgroup-visit");
    const before = (await (await fetch(`${s.url}/api/counters/${encodeURIComponent(key)}`)).json()) as { total?: number };
    const expected = (before.total ?? NaN) + 1;
    const vis = await Promise.race([ctx.visitor.call("visit", { url: s.wsUrl, key, timeoutMs: 20_000 }), s.exited.then(() => ({ ok: false }))]);
    if (!vis.ok) throw new Error("the visitor got no hello");
    if ((vis as { total?: number }).total !== expected) throw new Error(`hello total ${(vis as { total?: number }).total}, expected ${expected}`);
    steps.push({ step, ok: true, detail: `hello with total ${expected}` });

    step = STEPS[3];
    ctx.setLabel(`${label}: ${o.cgroupN} sockets`);
    const h = await hold(ctx, s, o.cgroupN, o.inflight, 90_000);
    if (!h.ok) throw new Error(`${h.hellos} of ${o.cgroupN} hellos`);
    steps.push({ step, ok: true, detail: `${h.hellos} of ${o.cgroupN} hellos` });

    step = STEPS[4];
    await sleep(1000);
    row.vmHwmMb = s.alive() ? mb(peakRssKb(s.pid)) : NaN;
    const r = cg.read();
    if (r.oomKill !== 0 || r.underOom || !s.alive()) throw new Error(`oom_kill ${r.oomKill}, under_oom ${r.underOom ? 1 : 0}`);
    steps.push({ step, ok: true, detail: "oom_kill 0, under_oom 0" });
  } catch (err) {
    // Say why the server is gone, if it is: its exit, and what the cgroup's OOM killer did.
    let detail = summary(err);
    if (server && !server.alive()) {
      const e = await server.exited;
      detail = `server died (${e.signal ?? `code ${e.code}`}) during this step; ${detail}`;
    }
    if (!/oom_kill/.test(detail)) detail += `; oom_kill ${cg.read().oomKill}`;
    steps.push({ step, ok: false, detail });
  } finally {
    const reading = cg.read();
    Object.assign(row, { maxUsageMb: reading.maxUsageBytes / 2 ** 20, failcnt: reading.failcnt, oomKill: reading.oomKill, underOom: reading.underOom });
    for (const s of STEPS) if (!steps.some((x) => x.step === s)) steps.push({ step: s, ok: false, detail: "not reached" });
    row.passed = steps.every((s) => s.ok);
    row.failedAt = steps.find((s) => !s.ok)?.step;
    await server?.kill();
    await ctx.closeAll();
    await cg.remove();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }
  return row;
}

export async function footprint(ds: Design[], ctx: FootprintContext, o: FootprintOptions, out: { footprint: Row[]; cgroup: Row[] }): Promise<void> {
  const noCgroup = cgroupUnavailable();
  if (noCgroup) ctx.note(`footprint: memory cgroup check not run: ${noCgroup}`);
  for (const d of ds) {
    if (d.missing) continue;
    const runs: Row[] = [];
    for (let r = 0; r < o.runs; r++) {
      const one = await footprintOnce(d, ctx, o, r);
      if (one.error) ctx.note(`footprint ${d.name} run ${r + 1}: ${one.error}`);
      if (one.stopProblem) ctx.note(`footprint ${d.name} run ${r + 1}: ${one.stopProblem}`);
      runs.push(one);
    }
    const m = (k: string) => median(runs.map((x) => x[k] as number));
    const row: Row = {
      design: d.name,
      store: runs.find((x) => x.store)?.store ?? d.store,
      readyVia: d.headcount ? "/readyz" : "listening line",
      runs: runs.length,
      failedRuns: runs.filter((x) => x.error).length,
      readyMsFresh: m("readyMsFresh"),
      readyMsRestart: m("readyMsRestart"),
      peakMbFresh: m("peakMbFresh"),
      peakMbRestart: m("peakMbRestart"),
      idleMbFresh: m("idleMbFresh"),
      idleMbRestart: m("idleMbRestart"),
      holdN: o.holdN,
      held: runs.map((x) => x.held ?? 0),
      holdMb: m("holdMb"),
      kibPerSocket: m("kibPerSocket"),
      errors: runs.map((x) => x.error).filter(Boolean),
      all: runs,
    };
    out.footprint.push(row);
    process.stderr.write(`\nfootprint ${d.name}: ${JSON.stringify({ ...row, all: undefined })}\n`);
    ctx.save();

    if (!d.headcount) continue;
    for (let r = 0; r < o.cgroupRuns; r++) {
      const cg: Row = noCgroup ? { design: d.name, run: r, unavailable: noCgroup, steps: [] } : await cgroupOnce(d, ctx, o, r);
      out.cgroup.push(cg);
      process.stderr.write(`\ncgroup ${d.name}: ${JSON.stringify(cg)}\n`);
      ctx.save();
      if (noCgroup) break;
    }
  }
}
