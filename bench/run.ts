// `npm run bench` — runs every scenario against headcount and the baselines,
// then writes bench/RESULTS.md, bench/burst.svg and bench/results.json.
//
//   npm run bench                      full run (~35 min on 2 cores)
//   npm run bench -- --quick           smoke run: small N, one run each
//   npm run bench -- --only=burst,hold --designs=headcount-node,floor-node --runs=1 --burst=1000,5000
//   npm run bench -- --only=footprint --quick --out=/tmp/fp   start-up, idle and per-socket memory, 128 MiB cgroup check
//   BENCH_NODE_FLAGS=--max-semi-space-size=8 npm run bench -- …   extra node flags for headcount (Node)
//
// Scenarios (--only=…): client, burst, burst-sse, sustained, hold, hold19k, footprint, lag.
// burst-sse is the burst with every visitor on Server-Sent Events (GET /sse)
// instead of a WebSocket, for headcount's designs (the baselines speak only WebSocket):
//   npm run bench -- --only=burst,burst-sse --designs=headcount-node,headcount-bun --runs=1 --burst=5000
// Each has its own default designs (DEFAULT_DESIGNS below); --designs=a,b
// replaces them for every scenario (a design a scenario cannot run is skipped).
// Footprint flags: --settle-ms, --footprint-sockets (10000), --cgroup-mb (128),
// --cgroup-sockets (5000), --cgroup-runs (1). Writing to --out=<dir> keeps a
// trial run from overwriting the published bench/RESULTS.md.
//
// Only ever targets 127.0.0.1; every scenario has a hard timeout.
import { execSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus, totalmem, release } from "node:os";
import { join } from "node:path";
import process from "node:process";
import postgres from "postgres";
import { removeAllCgroups } from "./cgroup.ts";
import { footprint } from "./footprint.ts";
import { lag } from "./lag.ts";
import {
  Client, cpuMs, cpuMsByComm, designs, live, machineBusyMs, ensureDatabase, median, NODE_FLAGS, now, peakRssKb, percentile, ROOT, serverEnv, settledRssKb,
  sleep, startServer, type Design, type DesignName, type Server,
} from "./lib.ts";
import { writeReport, type Results } from "./report.ts";

// ---- flags ----------------------------------------------------------------------------
const argv = process.argv.slice(2);
const flag = (name: string): string | undefined => {
  const a = argv.find((x) => x === `--${name}` || x.startsWith(`--${name}=`));
  if (a === undefined) return undefined;
  return a.includes("=") ? a.slice(a.indexOf("=") + 1) : "true";
};
const QUICK = flag("quick") === "true";
const list = (s: string | undefined) => (s ? s.split(",").map((x) => x.trim()).filter(Boolean) : undefined);
const ONLY = new Set(list(flag("only")) ?? ["client", "burst", "burst-sse", "sustained", "hold", "hold19k", "footprint", "lag"]);
// lag: keys in the embedded store and how long /api/site and /api/top are polled
const LAG_KEYS = Number(flag("lag-keys") ?? (QUICK ? 20_000 : 100_000));
const LAG_MS = Number(flag("lag-ms") ?? (QUICK ? 4000 : 10_000));
const RUNS = Number(flag("runs") ?? (QUICK ? 1 : 3));
const BURST_N = (list(flag("burst")) ?? (QUICK ? ["1000", "5000"] : ["1000", "5000", "10000", "19000"])).map(Number);
const SEED_MAX_N = Number(flag("seed-max") ?? 5000);
const SEED_CAP_MS = Number(flag("seed-cap-ms") ?? (QUICK ? 30_000 : 60_000));
const BURST_CAP_MS = Number(flag("burst-cap-ms") ?? 60_000);
const HOLD_N = Number(flag("hold") ?? (QUICK ? 2000 : 10_000));
const BIG_N = Number(flag("big") ?? (QUICK ? 4000 : 19_000));
const SUSTAIN_MS = Number(flag("sustain-ms") ?? (QUICK ? 3000 : 6000));
const LAT_VISITS = Number(flag("visits") ?? (QUICK ? 5 : 15));
const INFLIGHT = Number(flag("inflight") ?? 128); // handshakes in flight per load process; 0 = unbounded
const CLIENT_IMPL = flag("client") ?? "ws";
const CLIENTS = Number(flag("clients") ?? 3);
const INTERVAL = flag("interval") ?? "100";
const HOLD_INTERVAL = flag("hold-interval") ?? "25";
// footprint: settle before idle RSS, idle sockets held, the memory cgroup check
const SETTLE_MS = Number(flag("settle-ms") ?? (QUICK ? 2000 : 5000));
const FOOTPRINT_N = Number(flag("footprint-sockets") ?? 10_000);
const CGROUP_MB = Number(flag("cgroup-mb") ?? 128);
const CGROUP_N = Number(flag("cgroup-sockets") ?? 5000);
const CGROUP_RUNS = Number(flag("cgroup-runs") ?? 1);
const ADMIN_URL = process.env.BENCH_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const DB_NAME = "headcount_bench";
const OUT = flag("out") ?? join(ROOT, "bench");
const all = designs();
const design = (n: DesignName) => {
  const d = all.find((x) => x.name === n);
  if (!d) throw new Error(`no design ${n}; there are ${all.map((x) => x.name).join(", ")}`);
  return d;
};
type Scenario = "burst" | "burst-sse" | "sustained" | "hold" | "hold19k" | "footprint" | "lag";
const PG_SET: DesignName[] = ["headcount-node", "headcount-bun", "floor-node", "floor-bun", "seed"];
const DEFAULT_DESIGNS: Record<Scenario, DesignName[]> = {
  burst: PG_SET,
  "burst-sse": ["headcount-node", "headcount-bun"],
  // The hot key on the embedded store beside PostgreSQL, same runtime, same run.
  sustained: [...PG_SET, "headcount-deno", "headcount-node-embedded", "headcount-bun-embedded", "headcount-deno-embedded"],
  hold: PG_SET,
  hold19k: PG_SET,
  footprint: ["headcount-node-embedded", "headcount-node", "floor-node", "headcount-bun-embedded", "headcount-bun", "floor-bun", "headcount-deno-embedded", "headcount-deno"],
  lag: ["headcount-node-embedded", "headcount-bun-embedded"],
};
const wanted = list(flag("designs"))?.map((n) => design(n as DesignName).name);
function designsFor(s: Scenario): Design[] {
  const can = (d: Design) =>
    (s === "hold" || s === "hold19k" ? d.name !== "seed" : true) && (s === "burst-sse" ? d.name.startsWith("headcount") : true) && (s === "hold19k" ? d.store === "postgres" : true) && (s === "lag" ? d.store === "embedded" : true);
  return (wanted ?? DEFAULT_DESIGNS[s]).map(design).filter(can);
}

const results: Results & Required<Pick<Results, "footprint" | "cgroup" | "lag" | "burstSse">> = {
  started: new Date().toISOString(),
  quick: QUICK,
  runs: RUNS,
  machine: {} as Results["machine"],
  notes: [],
  burst: [],
  burstSse: [],
  sustained: [],
  hold: [],
  clientCost: [],
  footprint: [],
  cgroup: [],
  lag: [],
};
const note = (s: string) => {
  results.notes.push(s);
  process.stderr.write(`note: ${s}\n`);
};
if (NODE_FLAGS.length) note(`headcount (Node) ran with extra node flags: ${NODE_FLAGS.join(" ")} (BENCH_NODE_FLAGS)`);

// ---- progress line --------------------------------------------------------------------
let label = "";
let labelStart = now();
let clients: Client[] = [];
let visitor: Client;
const tty = process.stderr.isTTY;
let lastPrint = 0;
const ticker = setInterval(() => {
  if (!label) return;
  const p = clients.reduce(
    (a, c) => ({ opened: a.opened + c.progress.opened, hellos: a.hellos + c.progress.hellos, reached: a.reached + c.progress.reached, msgs: a.msgs + c.progress.msgs }),
    { opened: 0, hellos: 0, reached: 0, msgs: 0 },
  );
  const line = `[${((now() - labelStart) / 1000).toFixed(1)}s] ${label}: open ${p.opened} hello ${p.hellos} final ${p.reached} msgs ${p.msgs}`;
  if (tty) process.stderr.write(`\r\x1b[K${line}`);
  else if (Date.now() - lastPrint > 5000) {
    lastPrint = Date.now();
    process.stderr.write(line + "\n");
  }
}, 500);
const setLabel = (s: string) => {
  label = s;
  labelStart = now();
  for (const c of clients) c.reset();
  if (tty) process.stderr.write("\n");
};

// ---- helpers ----------------------------------------------------------------------------
let dbUrl = "";
let admin: postgres.Sql;
const runId = `${Date.now().toString(36)}`;
let keySeq = 0;
const freshKey = (tag: string) => `/bench/${runId}/${tag}/${keySeq++}`;

/** A design on a free port; the embedded store gets a fresh DATA_DIR, removed by kill(). */
async function launch(d: Design, extraEnv: Record<string, string> = {}): Promise<Server> {
  const env = serverEnv(dbUrl, { BROADCAST_INTERVAL_MS: INTERVAL, ...extraEnv });
  const prof = process.env.BENCH_PROF_DIR;
  const flags = prof && d.runtime === "node" ? ["--cpu-prof", `--cpu-prof-dir=${prof}`] : [];
  const server = await startServer(d, env, { flags });
  if (prof) {
    // A profile is written at a clean exit only.
    const kill = server.kill;
    server.kill = async () => {
      await server.stop(15_000);
      await kill();
    };
  }
  return server;
}

function split(n: number, parts: number): number[] {
  const base = Math.floor(n / parts);
  return Array.from({ length: parts }, (_, i) => base + (i < n % parts ? 1 : 0));
}

async function closeAll(): Promise<void> {
  await Promise.all([...clients, visitor].map((c) => c.call("closeAll")));
  await sleep(300);
}

async function xactCommit(): Promise<number> {
  await admin`select pg_stat_clear_snapshot()`;
  const [r] = await admin`select xact_commit::text as x from pg_stat_database where datname = ${DB_NAME}`;
  return Number(r!.x);
}

async function tableTotal(prefix: string): Promise<number> {
  const [r] = await admin`select coalesce(sum(total), 0)::text as t from counters where key like ${prefix + "%"}`;
  return Number(r!.t);
}

/** The embedded store's totals, read through headcount's own API (the store is inside the server). */
async function apiTotal(server: Server, keys: string[]): Promise<number> {
  let sum = 0;
  for (const key of keys) {
    const res = await fetch(`${server.url}/api/counters/${encodeURIComponent(key)}`);
    if (!res.ok) throw new Error(`GET /api/counters for ${key} answered ${res.status}`);
    sum += ((await res.json()) as { total: number }).total;
  }
  return sum;
}

// ---- scenario: burst ------------------------------------------------------------------
async function burstOnce(d: Design, n: number, run: number, capMs: number, transport: "ws" | "sse" = "ws") {
  const server = await launch(d);
  try {
    await sleep(300);
    const key = freshKey(`burst-${d.name}-${n}`);
    setLabel(`burst${transport === "sse" ? "-sse" : ""} ${d.name} N=${n} run ${run + 1}/${RUNS}`);
    const cpu0 = cpuMs(server.pid);
    const parts = split(n, clients.length);
    const url = transport === "sse" ? `${server.url}/sse` : server.wsUrl;
    const res = await Promise.all(
      clients.map((c, i) => c.call("open", { url, keys: [key], count: parts[i], target: n, inflight: INFLIGHT, timeoutMs: capMs })),
    );
    const cpu1 = cpuMs(server.pid);
    const peak = peakRssKb(server.pid);
    const ok = res.every((r) => r.ok);
    const t0 = Math.min(...res.map((r) => r.t0 as number));
    const t1 = Math.max(...res.map((r) => r.tDone as number));
    const lastOpen = Math.max(...res.map((r) => r.lastOpen as number));
    const msgs = res.reduce((a, r) => a + (r.msgs as number), 0);
    const reached = res.reduce((a, r) => a + (r.reached as number), 0);
    const total = await tableTotal(key);
    return { ok, ms: t1 - t0, connectMs: lastOpen - t0, msgs, cpuMs: cpu1 - cpu0, peakRssMb: peak / 1024, reached, tableTotal: total };
  } finally {
    await server.kill();
    await closeAll();
  }
}

async function burst(transport: "ws" | "sse" = "ws"): Promise<void> {
  const scenario = transport === "sse" ? "burst-sse" : "burst";
  const rows = transport === "sse" ? results.burstSse : results.burst;
  for (const n of BURST_N) {
    for (const d of designsFor(scenario)) {
      if (d.missing) continue;
      if (d.name === "seed" && n > SEED_MAX_N) {
        results.burst.push({ design: d.name, n, skipped: `not run above N=${SEED_MAX_N}: O(N²) messages (${((n * n) / 2e6).toFixed(0)}M at N=${n})` });
        continue;
      }
      const cap = d.name === "seed" ? SEED_CAP_MS : BURST_CAP_MS;
      const runs = [];
      for (let r = 0; r < RUNS; r++) {
        const one = await burstOnce(d, n, r, cap, transport);
        runs.push(one);
        // Once the median can only be the cap, more runs only cost time.
        if (runs.filter((x) => !x.ok).length > RUNS / 2 || (!one.ok && d.name === "seed")) break;
      }
      const okRuns = runs.filter((r) => r.ok);
      const row = {
        design: d.name,
        n,
        runs: runs.length,
        okRuns: okRuns.length,
        capMs: cap,
        ms: okRuns.length === runs.length ? median(runs.map((r) => r.ms)) : NaN,
        atLeastMs: okRuns.length === runs.length ? undefined : cap,
        connectMs: median(runs.map((r) => r.connectMs)),
        msgs: median(runs.map((r) => r.msgs)),
        cpuMs: median(runs.map((r) => r.cpuMs)),
        peakRssMb: median(runs.map((r) => r.peakRssMb)),
        tableTotal: runs.map((r) => r.tableTotal),
        all: runs.map((r) => Math.round(r.ms)),
      };
      rows.push(row);
      process.stderr.write(`\n${scenario} ${d.name} N=${n}: ${JSON.stringify(row)}\n`);
      save();
    }
  }
}

// ---- scenario: sustained -----------------------------------------------------------------
async function sustainedOnce(d: Design, keysCount: number, run: number) {
  const server = await launch(d);
  try {
    await sleep(300);
    const prefix = `/bench/${runId}/sus-${d.name}-${keysCount}-${run}/`;
    const keys = Array.from({ length: keysCount }, (_, i) => `${prefix}${i}`);
    setLabel(`sustained ${d.name} keys=${keysCount} run ${run + 1}/${RUNS}`);
    const x0 = await xactCommit();
    const cpu0 = cpuMs(server.pid);
    const pg0 = cpuMsByComm("postgres");
    const m0 = machineBusyMs();
    const cl0 = (await Promise.all(clients.map((c) => c.call("stats")))).reduce((a, s) => a + (s.cpuMs as number), 0);
    const res = await Promise.all(
      clients.map((c, i) => c.call("sustain", { url: server.wsUrl, keys, concurrency: 64, durationMs: SUSTAIN_MS, seed: run * 10 + i + 1 })),
    );
    const cpu1 = cpuMs(server.pid);
    const pg1 = cpuMsByComm("postgres");
    const m1 = machineBusyMs();
    const cl1 = (await Promise.all(clients.map((c) => c.call("stats")))).reduce((a, s) => a + (s.cpuMs as number), 0);
    await sleep(1500); // let backends report their stats
    // The embedded store has no pg_stat_database: its commits are not counted.
    const x1 = d.store === "postgres" ? await xactCommit() : NaN;
    const visits = res.reduce((a, r) => a + (r.visits as number), 0);
    const attempts = res.reduce((a, r) => a + (r.attempts as number), 0);
    const failed = res.reduce((a, r) => a + (r.failed as number), 0);
    const secs = (Math.max(...res.map((r) => r.t1 as number)) - Math.min(...res.map((r) => r.t0 as number))) / 1000;
    const total = d.store === "postgres" ? await tableTotal(prefix) : await apiTotal(server, keys);
    return { visitsPerSec: visits / secs, serverCpuPct: (100 * (cpu1 - cpu0)) / (secs * 1000),
      clientCpuPct: (100 * (cl1 - cl0)) / (secs * 1000),
      pgCpuPct: (100 * (pg1 - pg0)) / (secs * 1000),
      machinePct: (100 * (m1 - m0)) / (secs * 1000),
      visits, attempts, failed, commits: x1 - x0, tableTotal: total, ok: total === visits };
  } finally {
    await server.kill();
    await closeAll();
  }
}

async function sustained(): Promise<void> {
  for (const keysCount of [1, 1000]) {
    for (const d of designsFor("sustained")) {
      if (d.missing) continue;
      const runs = [];
      for (let r = 0; r < RUNS; r++) runs.push(await sustainedOnce(d, keysCount, r));
      const row = {
        design: d.name,
        keys: keysCount,
        runs: runs.length,
        visitsPerSec: median(runs.map((r) => r.visitsPerSec)),
        serverCpuPct: median(runs.map((r) => r.serverCpuPct)),
        clientCpuPct: median(runs.map((r) => r.clientCpuPct)),
        pgCpuPct: median(runs.map((r) => r.pgCpuPct)),
        machinePct: median(runs.map((r) => r.machinePct)),
        store: d.store,
        commits: median(runs.map((r) => r.commits)),
        visitsPerCommit: median(runs.map((r) => r.visits / Math.max(1, r.commits))),
        visits: runs.map((r) => r.visits),
        tableTotals: runs.map((r) => r.tableTotal),
        failed: runs.reduce((a, r) => a + r.failed, 0),
        allCommitted: runs.every((r) => r.ok),
      };
      results.sustained.push(row);
      process.stderr.write(`\nsustained ${d.name} keys=${keysCount}: ${JSON.stringify(row)}\n`);
      save();
    }
  }
}

// ---- scenario: hold N watchers; idle memory; fan-out latency ----------------------------------
async function holdOnce(d: Design, n: number, run: number) {
  const server = await launch(d, { BROADCAST_INTERVAL_MS: HOLD_INTERVAL });
  try {
    const key = freshKey(`hold-${d.name}-${n}`);
    // Warm up code paths so the baseline RSS includes them, then let it settle.
    setLabel(`hold ${d.name} N=${n} run ${run + 1}/${RUNS}: warm-up`);
    await Promise.all(clients.map((c) => c.call("open", { url: server.wsUrl, keys: [freshKey("warm")], count: 100, target: null, inflight: 0, timeoutMs: 20_000 })));
    await Promise.all(clients.map((c) => c.call("closeAll")));
    const rss0 = await settledRssKb(server.pid);
    setLabel(`hold ${d.name} N=${n} run ${run + 1}/${RUNS}: connecting`);
    const parts = split(n, clients.length);
    const opened = await Promise.all(
      clients.map((c, i) => c.call("open", { url: server.wsUrl, keys: [key], count: parts[i], target: null, inflight: INFLIGHT, timeoutMs: 120_000 })),
    );
    if (!opened.every((r) => r.ok)) throw new Error(`hold ${d.name} N=${n}: not every socket got its hello: ${JSON.stringify(opened.map((r) => r.hellos))}`);
    const connectMs = Math.max(...opened.map((r) => r.lastHello as number)) - Math.min(...opened.map((r) => r.t0 as number));
    await sleep(500);
    const rss1 = await settledRssKb(server.pid);
    setLabel(`hold ${d.name} N=${n} run ${run + 1}/${RUNS}: fan-out`);
    const lat: number[] = [];
    const rounds: number[] = [];
    const spreads: number[] = [];
    let missing = 0;
    let expected = n;
    for (let v = 0; v < LAT_VISITS; v++) {
      await sleep(150); // longer than the broadcast interval: each visit starts a quiet key
      const target = expected + 1;
      let armed = 0;
      let allArmed!: () => void;
      const armedP = new Promise<void>((r) => (allArmed = r));
      const watches = clients.map((c) => c.call("watch", { target, timeoutMs: 20_000 }, () => ++armed === clients.length && allArmed()));
      await armedP;
      const vis = await visitor.call("visit", { url: server.wsUrl, key, timeoutMs: 20_000 });
      const got = await Promise.all(watches);
      if (!vis.ok) throw new Error("visitor got no hello");
      expected = vis.total as number;
      const tHello = vis.tHello as number;
      const times = got.flatMap((g) => (g.times as number[]).filter((t) => Number.isFinite(t)));
      missing += got.reduce((a, g) => a + (g.missing as number), 0);
      for (const t of times) lat.push(t - tHello);
      rounds.push(Math.max(...times) - tHello);
      spreads.push(Math.max(...times) - Math.min(...times));
    }
    lat.sort((a, b) => a - b);
    return {
      connectMs,
      bytesPerConn: ((rss1 - rss0) * 1024) / n,
      rss0Mb: rss0 / 1024,
      rss1Mb: rss1 / 1024,
      p50: percentile(lat, 50),
      p99: percentile(lat, 99),
      max: lat[lat.length - 1]!,
      roundMs: median(rounds),
      spreadMs: median(spreads),
      missing,
    };
  } finally {
    await server.kill();
    await closeAll();
  }
}

async function hold(n: number, which: Design[]): Promise<void> {
  for (const d of which) {
    if (d.missing) continue;
    const runs = [];
    for (let r = 0; r < RUNS; r++) {
      try {
        runs.push(await holdOnce(d, n, r));
      } catch (err) {
        note(`hold ${d.name} N=${n} run ${r + 1} failed: ${(err as Error).message.slice(0, 300)}`);
      }
    }
    if (runs.length === 0) {
      results.hold.push({ design: d.name, n, runs: 0, failed: true });
      continue;
    }
    const row = {
      design: d.name,
      n,
      runs: runs.length,
      connectMs: median(runs.map((r) => r.connectMs)),
      bytesPerConn: median(runs.map((r) => r.bytesPerConn)),
      rss0Mb: median(runs.map((r) => r.rss0Mb)),
      rss1Mb: median(runs.map((r) => r.rss1Mb)),
      p50: median(runs.map((r) => r.p50)),
      p99: median(runs.map((r) => r.p99)),
      roundMs: median(runs.map((r) => r.roundMs)),
      spreadMs: median(runs.map((r) => r.spreadMs)),
      missing: runs.reduce((a, r) => a + r.missing, 0),
    };
    results.hold.push(row);
    process.stderr.write(`\nhold ${d.name} N=${n}: ${JSON.stringify(row)}\n`);
    save();
  }
}

// ---- load-generator cost per socket: ws vs Node's global WebSocket ---------------------------
async function clientCost(): Promise<void> {
  const n = QUICK ? 1000 : 3000;
  for (const impl of ["ws", "global"]) {
    const server = await launch(design("floor-node"));
    const c = new Client(impl);
    try {
      await c.ready;
      setLabel(`client cost ${impl} n=${n}`);
      await sleep(300);
      const s0 = await c.call("stats");
      const r = await c.call("open", { url: server.wsUrl, keys: [freshKey("client")], count: n, target: null, inflight: INFLIGHT, timeoutMs: 60_000 });
      await sleep(1500);
      const s1 = await c.call("stats");
      results.clientCost.push({
        impl: impl === "ws" ? "ws package" : "global WebSocket (undici)",
        n,
        ok: r.ok,
        bytesPerSocket: ((s1.rss as number) - (s0.rss as number)) / n,
        cpuUsPerSocket: (((s1.cpuMs as number) - (s0.cpuMs as number)) * 1000) / n,
      });
    } finally {
      c.exit();
      await server.kill();
    }
  }
  process.stderr.write(`\nclient cost: ${JSON.stringify(results.clientCost)}\n`);
  save();
}

// ---- machine ------------------------------------------------------------------------------
function sh(cmd: string): string {
  try {
    return execSync(cmd, { cwd: ROOT, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
  } catch {
    return "?";
  }
}

function save(): void {
  mkdirSync(OUT, { recursive: true });
  writeFileSync(join(OUT, QUICK ? "results.quick.json" : "results.json"), JSON.stringify(results, null, 2) + "\n");
}

async function main(): Promise<void> {
  const dirty = sh("git status --porcelain -- src").split("\n").filter(Boolean).length;
  results.machine = {
    intervalMs: Number(INTERVAL),
    holdIntervalMs: Number(HOLD_INTERVAL),
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model ?? "?",
    memGb: totalmem() / 2 ** 30,
    kernel: release(),
    node: process.version,
    bun: sh(`${join(ROOT, "node_modules/.bin/bun")} --version`),
    postgres: "",
    commit: sh("git rev-parse --short HEAD"),
    srcDirty: dirty,
    date: new Date().toISOString(),
    clientImpl: CLIENT_IMPL,
    loadProcesses: CLIENTS,
    inflight: INFLIGHT,
  };
  dbUrl = await ensureDatabase(ADMIN_URL, DB_NAME);
  admin = postgres(dbUrl, { max: 2, onnotice: () => {} });
  results.machine.postgres = String((await admin`show server_version`)[0]!.server_version);
  // Let headcount create the schema once (its migrations); the baselines use the same tables.
  const hc = await launch(design("headcount-node"));
  await hc.kill();

  const used = new Set((["burst", "burst-sse", "sustained", "hold", "hold19k", "footprint"] as Scenario[]).filter((s) => ONLY.has(s)).flatMap((s) => designsFor(s)));
  for (const d of used) if (d.missing) note(`${d.label} skipped: ${d.missing}`);
  clients = Array.from({ length: CLIENTS }, () => new Client(CLIENT_IMPL));
  visitor = new Client(CLIENT_IMPL);
  await Promise.all([...clients, visitor].map((c) => c.ready));

  const hardStop = setTimeout(() => {
    process.stderr.write("\nbench: hard time limit reached; writing what we have\n");
    note("the run hit its overall time limit; some scenarios are missing");
    finish(1);
  }, Number(flag("limit-min") ?? 60) * 60_000);
  hardStop.unref();

  if (ONLY.has("client")) await clientCost();
  if (ONLY.has("burst")) await burst();
  if (ONLY.has("burst-sse")) await burst("sse");
  if (ONLY.has("sustained")) await sustained();
  if (ONLY.has("hold")) await hold(HOLD_N, designsFor("hold"));
  if (ONLY.has("hold19k")) await hold(BIG_N, designsFor("hold19k"));
  if (ONLY.has("footprint")) {
    results.machine.cgroupMb = CGROUP_MB;
    await footprint(
      designsFor("footprint"),
      {
        clients,
        visitor,
        env: (extra = {}) => serverEnv(dbUrl, { BROADCAST_INTERVAL_MS: HOLD_INTERVAL, ...extra }),
        freshKey,
        setLabel,
        note,
        save,
        closeAll,
      },
      { runs: RUNS, settleMs: SETTLE_MS, holdN: FOOTPRINT_N, cgroupN: CGROUP_N, cgroupMb: CGROUP_MB, cgroupRuns: CGROUP_RUNS, inflight: INFLIGHT },
      results,
    );
  }
  if (ONLY.has("lag")) {
    for (const d of designsFor("lag")) {
      const row = await lag(d, serverEnv(dbUrl), { keys: LAG_KEYS, durationMs: LAG_MS }, setLabel);
      results.lag.push(row);
      process.stderr.write(`\nlag ${d.name}: ${JSON.stringify(row)}\n`);
      save();
    }
  }
  finish(0);
}

let finished = false;
function finish(code: number): void {
  if (finished) return;
  finished = true;
  clearInterval(ticker);
  results.finished = new Date().toISOString();
  save();
  writeReport(results, OUT, { holdN: HOLD_N, bigN: BIG_N });
  for (const c of [...clients, visitor]) c?.exit();
  // Nothing outlives the bench: servers still running (after an abort) and memory cgroups.
  void Promise.all([...live].map((s) => s.kill()))
    .then(() => removeAllCgroups())
    .then(() => admin?.end({ timeout: 2 }))
    .finally(() => process.exit(code));
  setTimeout(() => process.exit(code), 8000).unref();
}

process.on("SIGINT", () => finish(130));
main().catch((err: unknown) => {
  process.stderr.write(`\nbench failed: ${(err as Error).stack ?? String(err)}\n`);
  note(`bench failed: ${(err as Error).message}`);
  finish(1);
});
