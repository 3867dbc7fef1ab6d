// Writes bench/RESULTS.md and bench/burst.svg from one run's results.
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { footprintSection } from "./report-footprint.ts";
import type { LagRow } from "./lag.ts";

export interface Results {
  started: string;
  finished?: string;
  quick: boolean;
  runs: number;
  machine: {
    cpus: number;
    cpuModel: string;
    memGb: number;
    kernel: string;
    node: string;
    bun: string;
    postgres: string;
    commit: string;
    srcDirty: number;
    date: string;
    clientImpl: string;
    loadProcesses: number;
    inflight: number;
    intervalMs: number;
    holdIntervalMs: number;
    /** The footprint scenario's memory cgroup limit. */
    cgroupMb?: number;
  };
  notes: string[];
  // deno-lint-ignore no-explicit-any
  burst: any[];
  /** Scenario "burst-sse": the same burst with every visitor on GET /sse; absent in older results. */
  // deno-lint-ignore no-explicit-any
  burstSse?: any[];
  // deno-lint-ignore no-explicit-any
  sustained: any[];
  // deno-lint-ignore no-explicit-any
  hold: any[];
  // deno-lint-ignore no-explicit-any
  clientCost: any[];
  // Absent in results written before the footprint scenario existed.
  // deno-lint-ignore no-explicit-any
  footprint?: any[];
  // deno-lint-ignore no-explicit-any
  cgroup?: any[];
  /** Scenario "lag" (bench/lag.ts); absent in older results. */
  lag?: LagRow[];
}

const LABEL: Record<string, string> = {
  "headcount-node": "headcount (Node)",
  "headcount-bun": "headcount (Bun)",
  "headcount-deno": "headcount (Deno)",
  "headcount-node-embedded": "headcount (Node, embedded)",
  "headcount-bun-embedded": "headcount (Bun, embedded)",
  "headcount-deno-embedded": "headcount (Deno, embedded)",
  // the name of the Node embedded design in results written before it had Bun and Deno siblings
  "headcount-pglite": "headcount (Node, PGlite)",
  "floor-node": "floor: bare ws (Node)",
  "floor-bun": "floor: bare Bun",
  seed: "seed design",
};
const COLOR: Record<string, string> = {
  "headcount-node": "#1f77b4",
  "headcount-bun": "#9467bd",
  "headcount-deno": "#e377c2",
  "headcount-node-embedded": "#17becf",
  "headcount-bun-embedded": "#bcbd22",
  "headcount-deno-embedded": "#ff7f0e",
  "headcount-pglite": "#17becf",
  "floor-node": "#2ca02c",
  "floor-bun": "#8c564b",
  seed: "#d62728",
};
const ORDER = [
  "headcount-node", "headcount-node-embedded", "floor-node", "headcount-bun", "headcount-bun-embedded", "floor-bun",
  "headcount-deno", "headcount-deno-embedded", "seed", "headcount-pglite",
];

const f1 = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : "—");
const f2 = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : "—");
const int = (x: number) => (Number.isFinite(x) ? Math.round(x).toLocaleString("en-US") : "—");
const secs = (ms: number) => (Number.isFinite(ms) ? (ms / 1000).toFixed(ms < 10_000 ? 2 : 1) : "—");

// deno-lint-ignore no-explicit-any
function burstTime(r: any): string {
  if (!r) return "—";
  if (r.skipped) return "skipped";
  if (r.atLeastMs) return `> ${secs(r.atLeastMs)} (cap)`;
  return secs(r.ms);
}

interface Target {
  name: string;
  want: string;
  got: string;
  met: boolean | null;
}

export function targets(res: Results, opts: { holdN: number; bigN: number }): Target[] {
  const b = (d: string, n: number) => res.burst.find((r) => r.design === d && r.n === n);
  const out: Target[] = [];
  // 1. burst 5k: >= 30x faster than the seed design
  {
    const hc = b("headcount-node", 5000);
    const seed = b("seed", 5000);
    if (hc && seed && !seed.skipped && Number.isFinite(hc.ms)) {
      const seedMs = seed.atLeastMs ?? seed.ms;
      const ratio = seedMs / hc.ms;
      out.push({
        name: "Burst of 5,000 vs the seed design",
        want: "≥ 30× faster",
        got: `${seed.atLeastMs ? "≥ " : ""}${f1(ratio)}× (${secs(hc.ms)} s vs ${seed.atLeastMs ? "> " : ""}${secs(seedMs)} s)`,
        met: ratio >= 30 ? true : seed.atLeastMs ? null : false,
      });
    } else out.push({ name: "Burst of 5,000 vs the seed design", want: "≥ 30× faster", got: "not measured in this run", met: null });
  }
  // 2. burst 10k within 1.25x of floor (Node, Bun)
  for (const [hcName, floorName, rt] of [["headcount-node", "floor-node", "Node"], ["headcount-bun", "floor-bun", "Bun"]] as const) {
    const n = res.burst.some((r) => r.n === 10_000) || res.burst.length === 0 ? 10_000 : Math.max(...res.burst.map((r) => r.n as number));
    const hc = b(hcName, n);
    const fl = b(floorName, n);
    const name = `Burst of ${int(n)} on ${rt} vs bare ${rt === "Node" ? "ws" : "Bun"}`;
    if (hc && fl && Number.isFinite(hc.ms) && Number.isFinite(fl.ms)) {
      const ratio = hc.ms / fl.ms;
      out.push({ name, want: "≤ 1.25×", got: `${f2(ratio)}× (${secs(hc.ms)} s vs ${secs(fl.ms)} s)`, met: ratio <= 1.25 });
    } else out.push({ name, want: "≤ 1.25×", got: hc ? "floor not measured" : `headcount (${rt}) not measured`, met: null });
  }
  // 3. hot key >= 5x visits/s of one statement per visit, every visit committed
  {
    const hc = res.sustained.find((r) => r.design === "headcount-node" && r.keys === 1);
    const seed = res.sustained.find((r) => r.design === "seed" && r.keys === 1);
    if (hc && seed) {
      const ratio = hc.visitsPerSec / seed.visitsPerSec;
      out.push({
        name: "One hot key on PostgreSQL vs one statement per visit",
        want: "≥ 5× visits/s, table total = visits",
        got: `${f2(ratio)}× (${int(hc.visitsPerSec)} vs ${int(seed.visitsPerSec)} visits/s); all committed: ${hc.allCommitted ? "yes" : "NO"}`,
        met: ratio >= 5 && hc.allCommitted,
      });
    } else out.push({ name: "One hot key vs one statement per visit", want: "≥ 5×", got: "not measured", met: null });
  }
  // 4. idle memory
  for (const [d, kib] of [["headcount-node", 8], ["headcount-bun", 4]] as const) {
    const h = res.hold.find((r) => r.design === d && r.n === opts.holdN && !r.failed);
    const name = `Idle memory per connection, ${LABEL[d]}`;
    if (h) out.push({ name, want: `≤ ${kib} KiB`, got: `${f2(h.bytesPerConn / 1024)} KiB at ${int(h.n)} connections`, met: h.bytesPerConn <= kib * 1024 });
    else out.push({ name, want: `≤ ${kib} KiB`, got: "not measured", met: null });
  }
  // 5. 19k connections on one Node process, fan-out round within 1.25x of bare ws
  {
    const hc = res.hold.find((r) => r.design === "headcount-node" && r.n === opts.bigN && !r.failed);
    const fl = res.hold.find((r) => r.design === "floor-node" && r.n === opts.bigN && !r.failed);
    const name = `${int(opts.bigN)} connections on one Node process, one fan-out round`;
    if (hc && fl) {
      const ratio = hc.spreadMs / fl.spreadMs;
      out.push({
        name,
        want: "held; round ≤ 1.25× bare ws",
        got: `held; first→last watcher ${f1(hc.spreadMs)} ms vs ${f1(fl.spreadMs)} ms = ${f2(ratio)}× (commit→last ${f1(hc.roundMs)} vs ${f1(fl.roundMs)} ms)`,
        met: ratio <= 1.25,
      });
    } else {
      const failed = res.hold.some((r) => r.design === "headcount-node" && r.n === opts.bigN && r.failed);
      out.push({ name, want: "held; ≤ 1.25×", got: hc ? "floor not measured" : failed ? "headcount did not hold them (see notes)" : "not measured", met: failed ? false : null });
    }
  }
  return out;
}

/**
 * Median over every run, a capped run counting as the cap. When the median
 * itself is a capped run the figure is only a lower bound (atLeastMs).
 */
// deno-lint-ignore no-explicit-any
export function normaliseBurst(r: any): void {
  if (r.skipped || !Array.isArray(r.all) || r.all.length === 0) return;
  const cap = r.capMs as number;
  const vals = (r.all as number[]).map((v) => Math.min(v, cap)).sort((a, b) => a - b);
  const m = vals.length >> 1;
  const med = vals.length % 2 ? vals[m]! : (vals[m - 1]! + vals[m]!) / 2;
  if (med >= cap * 0.999) {
    r.ms = NaN;
    r.atLeastMs = cap;
  } else {
    r.ms = med;
    r.atLeastMs = undefined;
  }
  r.cappedRuns = (r.all as number[]).filter((v) => v >= cap * 0.999).length;
}

export function writeReport(res: Results, dir: string, opts: { holdN: number; bigN: number }): void {
  for (const r of res.burst) normaliseBurst(r);
  for (const r of res.burstSse ?? []) normaliseBurst(r);
  const m = res.machine;
  const present = ORDER.filter((d) => res.burst.some((r) => r.design === d) || res.hold.some((r) => r.design === d) || res.sustained.some((r) => r.design === d));
  const ns = [...new Set(res.burst.map((r) => r.n as number))].sort((a, b) => a - b);
  const L: string[] = [];
  L.push(`# headcount benchmark results${res.quick ? " (quick smoke run — not the published numbers)" : ""}`);
  L.push("");
  L.push(`Written by \`npm run bench${res.quick ? " -- --quick" : ""}\` (bench/run.ts). Every figure is the median of ${res.runs} run${res.runs > 1 ? "s" : ""}; ratios compare designs measured in the same run. Raw numbers: \`bench/results${res.quick ? ".quick" : ""}.json\`.`);
  L.push("");
  L.push("## Machine");
  L.push("");
  L.push("| | |");
  L.push("|---|---|");
  L.push(`| CPU | ${m.cpus} × ${m.cpuModel} |`);
  L.push(`| memory | ${m.memGb.toFixed(1)} GiB |`);
  L.push(`| kernel | Linux ${m.kernel} |`);
  L.push(`| Node | ${m.node} |`);
  L.push(`| Bun | ${m.bun} |`);
  L.push(`| PostgreSQL | ${m.postgres} (local, database \`headcount_bench\`) |`);
  L.push(`| git commit | \`${m.commit}\`${m.srcDirty ? ` + ${m.srcDirty} uncommitted change(s) under src/ (others were working on the server during the run)` : ""} |`);
  L.push(`| date | ${m.date} → ${res.finished ?? "(unfinished)"} |`);
  L.push(`| load generator | ${m.loadProcesses} child processes + 1 visitor process, \`${m.clientImpl === "ws" ? "ws" : "global WebSocket"}\` clients, plain connect() to 127.0.0.1, ${m.inflight ? `≤ ${m.inflight} handshakes in flight per process` : "all sockets opened at once"} |`);
  L.push(`| open-file limit | 20,000 per process (server included) |`);
  L.push("");
  L.push("The load generator and the server share the same 2 cores, so absolute times include the clients' own work; compare designs by their ratios.");
  L.push("");
  L.push("## Method");
  L.push("");
  L.push("- Every design speaks the same protocol (DESIGN.md §4: `hello` to the joiner after its visit commits, then `count`), so one load generator drives all of them. Designs: **headcount** on Node (`src/runtime/node.ts`), Bun (`src/runtime/bun.ts`) and Deno (`src/runtime/deno.ts`, run with the permissions `deno task start` grants) against PostgreSQL, and the same on the embedded store (*embedded*: no `DATABASE_URL`, a fresh `DATA_DIR` per server); **seed design** (`bench/baselines/seed.ts`: per-visit `INSERT … ON CONFLICT … total + 1`, then the new count sent to every socket, bare `ws` + postgres.js); **floor: bare ws** (`bench/baselines/floor-node.ts`: the same group-commit statement as headcount, one hello with an HMAC token per joiner, one coalesced count per key per interval encoded once into a single WebSocket frame written to every socket); **floor: bare Bun** (`bench/baselines/floor-bun.ts`: the same on `Bun.serve` with `server.publish`).");
  L.push(`- Every server is a fresh child process per run, on a free port, with the same environment: \`DATABASE_URL\` (a dedicated database \`headcount_bench\`, unique keys per run; none for the embedded store), \`PG_POOL_MAX=10\`, \`BROADCAST_INTERVAL_MS=${m.intervalMs ?? 100}\` for bursts and sustained load and \`${m.holdIntervalMs ?? 25}\` (headcount's default) for held connections and fan-out latency; headcount's abuse limits lifted only through \`RATE_LIMIT_BURST\`, \`RATE_LIMIT_PER_SEC\`, \`MAX_SOCKETS_PER_IP\`, \`MAX_CONNECTIONS_PER_IP\` and \`MAX_SOCKETS=19500\`.`);
  L.push(`- The load generator keeps at most ${m.inflight || "∞"} WebSocket handshakes in flight per process (${(m.inflight || 0) * (m.loadProcesses || 3)} in all), below Node's default listen backlog of 511, so a burst measures the servers rather than the kernel's SYN retry timers (see Notes).`);
  L.push("- The load generator's clients look like browsers: a browser User-Agent and an `Origin` of the server's own address on every handshake (bench/client.ts), so a server that filters bots or checks origins counts them as the visitors they stand for.");
  L.push("- Server CPU is user+system time from `/proc/<pid>/stat`, peak RSS is `VmHWM` from `/proc/<pid>/status` (including start-up), idle RSS is `VmRSS` once it stops moving.");
  L.push("- N = 20,000 cannot be held by one server process here (20,000 open files per process, sockets included, plus the database pool and the listener), so the top point is 19,000.");
  L.push("");

  L.push("## Burst: N visitors arrive at once");
  L.push("");
  L.push("Time from the first connect() until every client has seen the final total N (seconds). All clients join one fresh key on a freshly started server.");
  L.push("");
  L.push(`![burst time against N](burst.svg)`);
  L.push("");
  L.push(`| design | ${ns.map((n) => `N=${int(n)}`).join(" | ")} |`);
  L.push(`|---|${ns.map(() => "---:").join("|")}|`);
  for (const d of present) {
    const rows = ns.map((n) => res.burst.find((r) => r.design === d && r.n === n));
    if (rows.every((r) => !r)) continue;
    L.push(`| ${LABEL[d]} | ${rows.map((r) => burstTime(r)).join(" | ")} |`);
  }
  L.push("");
  L.push("Per run detail (medians): messages the clients received from the server (hello + count), server CPU time (user+system from /proc/<pid>/stat) and peak RSS (VmHWM) over the burst.");
  L.push("");
  L.push("A run that hit its cap counts as the cap in the median (marked *c*); when the median is a capped run the figure is only a lower bound.");
  L.push("");
  L.push("| design | N | time s | connect s | messages | msgs/visitor | server CPU s | peak RSS MB | runs (ms) |");
  L.push("|---|---:|---:|---:|---:|---:|---:|---:|---|");
  for (const n of ns) {
    for (const d of present) {
      const r = res.burst.find((x) => x.design === d && x.n === n);
      if (!r) continue;
      if (r.skipped) {
        L.push(`| ${LABEL[d]} | ${int(n)} | skipped: ${r.skipped} | | | | | | |`);
        continue;
      }
      L.push(`| ${LABEL[d]} | ${int(n)} | ${burstTime(r)} | ${secs(r.connectMs)} | ${int(r.msgs)} | ${f1(r.msgs / n)} | ${f2(r.cpuMs / 1000)} | ${int(r.peakRssMb)} | ${(r.all as number[]).map((v: number) => (v >= r.capMs * 0.999 ? `${v}c` : String(v))).join(", ")} |`);
    }
  }
  L.push("");

  if (res.burstSse?.length) {
    L.push("## Burst over Server-Sent Events");
    L.push("");
    L.push("The same burst with every visitor on `GET /sse` (the fallback where WebSocket upgrades are blocked; bench/client.ts opens one GET on a plain TCP socket per visitor and scans the events as cheaply as it reads WebSocket frames), beside the WebSocket burst of the same design and N in this run.");
    L.push("");
    L.push("| design | N | SSE time s | WebSocket time s | SSE / WebSocket | connect s | messages | server CPU s | peak RSS MB | runs (ms) |");
    L.push("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|");
    for (const r of res.burstSse) {
      if (r.skipped) continue;
      const ws = res.burst.find((x) => x.design === r.design && x.n === r.n);
      const ratio = ws && Number.isFinite(ws.ms) && Number.isFinite(r.ms) ? `${f2(r.ms / ws.ms)}×` : "—";
      L.push(`| ${LABEL[r.design]} | ${int(r.n)} | ${burstTime(r)} | ${burstTime(ws)} | ${ratio} | ${secs(r.connectMs)} | ${int(r.msgs)} | ${f2(r.cpuMs / 1000)} | ${int(r.peakRssMb)} | ${(r.all as number[]).join(", ")} |`);
    }
    L.push("");
  }

  if (res.sustained.length) {
    L.push("## Sustained visits");
    L.push("");
    L.push("Closed loop: 3 × 64 concurrent visitors, each connects, waits for its hello (the visit is committed), closes and starts again. Commits are `xact_commit` deltas of the benchmark database (`pg_stat_database`), which also count the server's other transactions (presence heartbeats, notifications). Table total is `sum(total)` over the run's keys. On the embedded store there is no `pg_stat_database` (commits —) and the table total is the sum of the run's keys read through headcount's own `GET /api/counters/<key>` before the server stops.");
    L.push("");
    const split = res.sustained.some((r) => r.clientCpuPct !== undefined);
    L.push(split
      ? "CPU columns are percent of one core over the run (the machine has " + m.cpus + "): the server process, the 3 load processes, all PostgreSQL processes, and the whole machine."
      : "Server CPU is percent of one core over the run (the machine has " + m.cpus + "; the load generator and PostgreSQL share them).");
    L.push("");
    L.push(`| design | keys | visits/s | server CPU % | ${split ? "load gen CPU % | PostgreSQL CPU % | machine busy % | " : ""}commits | visits/commit | visits (per run) | table total (per run) | all committed |`);
    L.push(split ? "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---|" : "|---|---:|---:|---:|---:|---:|---|---|---|");
    for (const k of [1, 1000]) {
      for (const d of present) {
        const r = res.sustained.find((x) => x.design === d && x.keys === k);
        if (!r) continue;
        L.push(`| ${LABEL[d]} | ${int(k)} | ${int(r.visitsPerSec)} | ${r.serverCpuPct === undefined ? "—" : int(r.serverCpuPct)} | ${split ? `${int(r.clientCpuPct)} | ${int(r.pgCpuPct)} | ${int(r.machinePct)} | ` : ""}${int(r.commits)} | ${f1(r.visitsPerCommit)} | ${r.visits.join(", ")} | ${r.tableTotals.join(", ")} | ${r.allCommitted ? "yes" : "**no**"} |`);
      }
    }
    L.push("");
  }

  if (res.hold.length) {
    L.push("## Held connections: idle memory and fan-out latency");
    L.push("");
    L.push("N watchers join one key and stay; then single visits arrive one at a time. Latency is from the visitor receiving its hello (its visit has committed) to each watcher receiving a count carrying that total, pooled over all watchers and visits (the coalescing interval, `BROADCAST_INTERVAL_MS=25`, is part of it). *Round* is that delay to the last watcher; *first→last* is the spread of one round across the watchers, i.e. the cost of writing the update to every socket. Idle memory is the server's settled RSS delta over the N connections, after a warm-up, divided by N.");
    L.push("");
    L.push("| design | N | connect all s | idle bytes/conn | RSS before → after MB | p50 ms | p99 ms | round ms | first→last ms |");
    L.push("|---|---:|---:|---:|---|---:|---:|---:|---:|");
    for (const n of [...new Set(res.hold.map((r) => r.n as number))].sort((a, b) => a - b)) {
      for (const d of present) {
        const r = res.hold.find((x) => x.design === d && x.n === n);
        if (!r) continue;
        if (r.failed) {
          L.push(`| ${LABEL[d]} | ${int(n)} | failed (see notes) | | | | | | |`);
          continue;
        }
        L.push(`| ${LABEL[d]} | ${int(n)} | ${secs(r.connectMs)} | ${int(r.bytesPerConn)} | ${int(r.rss0Mb)} → ${int(r.rss1Mb)} | ${f1(r.p50)} | ${f1(r.p99)} | ${f1(r.roundMs)} | ${f1(r.spreadMs)} |`);
      }
    }
    L.push("");
  }

  if (res.clientCost.length) {
    L.push("## Load-generator client cost");
    L.push("");
    L.push("| client | sockets | client RSS per socket | client CPU per socket |");
    L.push("|---|---:|---:|---:|");
    for (const c of res.clientCost) L.push(`| ${c.impl} | ${int(c.n)} | ${int(c.bytesPerSocket)} B | ${f1(c.cpuUsPerSocket)} µs |`);
    L.push("");
  }

  if (res.lag?.length) {
    L.push("## Responsiveness while the read endpoints scan (embedded store)");
    L.push("");
    L.push("`/healthz` every 20 ms while `/api/site` (prefixes matching every key) and `/api/top` are polled back to back.");
    L.push("");
    L.push("| design | keys | /healthz p50 | p99 | max | /api/site p50 | max | /api/top p50 | max |");
    L.push("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (const r of res.lag) {
      L.push(`| ${LABEL[r.design] ?? r.design} | ${int(r.keys)} | ${f1(r.healthz.p50)} ms | ${f1(r.healthz.p99)} ms | ${f1(r.healthz.max)} ms | ${f1(r.site.p50)} ms | ${f1(r.site.max)} ms | ${f1(r.top.p50)} ms | ${f1(r.top.max)} ms |`);
    }
    L.push("");
  }

  L.push(...footprintSection(res.footprint ?? [], res.cgroup ?? [], res.sustained, m.cgroupMb ?? 128, (d) => LABEL[d] ?? d));

  L.push("## Targets (issue 4)");
  L.push("");
  L.push("| target | wanted | measured | |");
  L.push("|---|---|---|---|");
  for (const t of targets(res, opts)) L.push(`| ${t.name} | ${t.want} | ${t.got} | ${t.met === true ? "**met**" : t.met === false ? "**missed**" : "not decided"} |`);
  L.push("");
  if (res.notes.length) {
    L.push("## Notes");
    L.push("");
    for (const n of res.notes) L.push(`- ${n}`);
    L.push("");
  }
  const extra = join(dir, "NOTES.md");
  if (!res.quick && existsSync(extra)) L.push(readFileSync(extra, "utf8").trim(), "");
  writeFileSync(join(dir, res.quick ? "RESULTS.quick.md" : "RESULTS.md"), L.join("\n"));
  writeFileSync(join(dir, res.quick ? "burst.quick.svg" : "burst.svg"), burstSvg(res));
}

/** Burst time against N, one line per design, log-scale time axis. Hand-written SVG. */
export function burstSvg(res: Results): string {
  const W = 720, H = 420, ml = 70, mr = 210, mt = 40, mb = 55;
  const pw = W - ml - mr, ph = H - mt - mb;
  const pts = res.burst.filter((r) => !r.skipped && (Number.isFinite(r.ms) || r.atLeastMs));
  const ns = pts.map((r) => r.n as number);
  const xMax = Math.max(1000, ...ns) * 1.05;
  const vals = pts.map((r) => (r.atLeastMs ?? r.ms) / 1000);
  const yMin = 10 ** Math.floor(Math.log10(Math.max(0.01, Math.min(...vals, 1))));
  const yMax = 10 ** Math.ceil(Math.log10(Math.max(...vals, 1)));
  const x = (n: number) => ml + (n / xMax) * pw;
  const y = (s: number) => mt + ph - ((Math.log10(s) - Math.log10(yMin)) / (Math.log10(yMax) - Math.log10(yMin))) * ph;
  const o: string[] = [];
  o.push(`<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" font-family="system-ui, sans-serif" font-size="12">`);
  o.push(`<rect width="${W}" height="${H}" fill="#fff"/>`);
  o.push(`<text x="${ml}" y="22" font-size="15" font-weight="600">Burst: time until every visitor sees the final total</text>`);
  for (let e = Math.log10(yMin); e <= Math.log10(yMax); e++) {
    const v = 10 ** e;
    o.push(`<line x1="${ml}" x2="${ml + pw}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}" stroke="#ddd"/>`);
    o.push(`<text x="${ml - 8}" y="${(y(v) + 4).toFixed(1)}" text-anchor="end">${v >= 1 ? v : v.toFixed(-e)} s</text>`);
  }
  const step = xMax > 12_000 ? 5000 : xMax > 4000 ? 2000 : 500;
  for (let n = 0; n <= xMax; n += step) {
    o.push(`<line x1="${x(n).toFixed(1)}" x2="${x(n).toFixed(1)}" y1="${mt}" y2="${mt + ph}" stroke="#eee"/>`);
    o.push(`<text x="${x(n).toFixed(1)}" y="${mt + ph + 18}" text-anchor="middle">${n >= 1000 ? `${n / 1000}k` : n}</text>`);
  }
  o.push(`<rect x="${ml}" y="${mt}" width="${pw}" height="${ph}" fill="none" stroke="#888"/>`);
  o.push(`<text x="${ml + pw / 2}" y="${H - 12}" text-anchor="middle">visitors arriving at once (N)</text>`);
  o.push(`<text transform="translate(16 ${mt + ph / 2}) rotate(-90)" text-anchor="middle">seconds (log scale)</text>`);
  let ly = mt + 10;
  for (const d of ORDER) {
    const rs = pts.filter((r) => r.design === d).sort((a, b) => a.n - b.n);
    if (rs.length === 0) continue;
    const c = COLOR[d]!;
    const path = rs.map((r, i) => `${i ? "L" : "M"}${x(r.n).toFixed(1)} ${y((r.atLeastMs ?? r.ms) / 1000).toFixed(1)}`).join(" ");
    o.push(`<path d="${path}" fill="none" stroke="${c}" stroke-width="2"/>`);
    for (const r of rs) {
      const cx = x(r.n).toFixed(1), cy = y((r.atLeastMs ?? r.ms) / 1000).toFixed(1);
      if (r.atLeastMs) o.push(`<path d="M${cx} ${cy} l-5 8 h10 z" fill="${c}"><title>${LABEL[d]} N=${r.n}: over ${r.atLeastMs / 1000} s (cap)</title></path>`);
      else o.push(`<circle cx="${cx}" cy="${cy}" r="3.5" fill="${c}"><title>${LABEL[d]} N=${r.n}: ${(r.ms / 1000).toFixed(2)} s</title></circle>`);
    }
    o.push(`<line x1="${ml + pw + 15}" x2="${ml + pw + 35}" y1="${ly}" y2="${ly}" stroke="${c}" stroke-width="2"/>`);
    o.push(`<text x="${ml + pw + 40}" y="${ly + 4}">${LABEL[d]}</text>`);
    ly += 20;
  }
  if (pts.some((r) => r.atLeastMs)) {
    o.push(`<text x="${ml + pw + 15}" y="${ly + 8}" fill="#555">▲ = stopped at the cap</text>`);
  }
  o.push(`</svg>`);
  return o.join("\n") + "\n";
}

// `node bench/report.ts [bench/results.json]` rewrites RESULTS.md and burst.svg from saved results.
if (process.argv[1]?.endsWith("report.ts")) {
  const file = process.argv[2] ?? join(decodeURIComponent(new URL(".", import.meta.url).pathname), "results.json");
  const res = JSON.parse(readFileSync(file, "utf8")) as Results;
  const dir = decodeURIComponent(new URL(".", import.meta.url).pathname);
  const holdN = Math.min(...res.hold.map((r) => r.n as number).filter((n) => n > 0), 10_000);
  const bigN = Math.max(...res.hold.map((r) => r.n as number), 19_000);
  writeReport(res, dir, { holdN, bigN });
}
