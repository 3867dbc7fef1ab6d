// The "Footprint" part of bench/RESULTS.md: start-up, idle and per-socket
// memory, the memory cgroup check, and the footprint targets.

// deno-lint-ignore no-explicit-any
type Row = Record<string, any>;

export interface FootprintTarget {
  name: string;
  want: string;
  got: string;
  met: boolean | null;
}

const f1 = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : "—");
const int = (x: number) => (Number.isFinite(x) ? Math.round(x).toLocaleString("en-US") : "—");
const RUNTIMES = [["node", "Node"], ["bun", "Bun"], ["deno", "Deno"]] as const;
const STEP_COLUMNS = ["ready", "serves the page", "counts a visit", "holds the sockets", "no OOM kill"];

function cell(step: Row | undefined): string {
  if (!step) return "—";
  if (step.ok) return `pass (${step.detail})`;
  return step.detail === "not reached" ? "not reached" : `**FAIL**: ${step.detail}`;
}

/** The larger of the two idle readings: a target on idle RSS holds for both starts or not at all. */
const idleMb = (r: Row) => Math.max(r.idleMbFresh, r.idleMbRestart);

export function footprintTargets(footprint: Row[], cgroup: Row[], sustained: Row[], limitMb: number): FootprintTarget[] {
  const out: FootprintTarget[] = [];
  const fp = (d: string) => footprint.find((r) => r.design === d);
  {
    const rows = cgroup.filter((r) => r.design === "headcount-node-embedded");
    const name = `\`npm start\` (Node, embedded) on a fresh data directory inside a ${limitMb} MiB memory cgroup`;
    const want = `ready, serves the page, counts, holds ${int(rows[0]?.sockets ?? 5000)} sockets, no OOM kill`;
    if (rows.length === 0) out.push({ name, want, got: "not measured", met: null });
    else if (rows.some((r) => r.unavailable)) out.push({ name, want, got: `not run: ${rows.find((r) => r.unavailable)!.unavailable}`, met: null });
    else {
      const failed = rows.filter((r) => !r.passed);
      const peak = Math.max(...rows.map((r) => r.maxUsageMb));
      out.push({
        name,
        want,
        got: failed.length
          ? `failed at "${failed[0]!.failedAt}": ${failed[0]!.steps.find((s: Row) => !s.ok)?.detail} (cgroup peak ${f1(peak)} MiB)`
          : `all steps passed${rows.length > 1 ? ` in ${rows.length} runs` : ""}; cgroup peak ${f1(peak)} MiB`,
        met: failed.length === 0,
      });
    }
  }
  for (const [rt, Rt] of RUNTIMES) {
    const r = fp(`headcount-${rt}-embedded`);
    if (!r) continue;
    out.push({
      name: `First start to ready, ${Rt} embedded (spawn → /readyz 200, fresh data directory)`,
      want: "≤ 1 s",
      got: Number.isFinite(r.readyMsFresh) ? `${int(r.readyMsFresh)} ms (restart ${int(r.readyMsRestart)} ms)` : `failed: ${r.errors[0] ?? "no reading"}`,
      met: Number.isFinite(r.readyMsFresh) ? r.readyMsFresh <= 1000 : false,
    });
  }
  for (const [rt, Rt, limit] of [["node", "Node", 80], ["bun", "Bun", 48]] as const) {
    const r = fp(`headcount-${rt}-embedded`);
    const name = `Idle RSS, ${Rt} embedded`;
    if (!r) out.push({ name, want: `≤ ${limit} MB`, got: "not measured", met: null });
    else {
      const v = idleMb(r);
      out.push({
        name,
        want: `≤ ${limit} MB`,
        got: Number.isFinite(v) ? `${f1(v)} MiB (fresh start ${f1(r.idleMbFresh)}, restart ${f1(r.idleMbRestart)})` : `failed: ${r.errors[0] ?? "no reading"}`,
        met: Number.isFinite(v) ? v <= limit : false,
      });
    }
  }
  for (const [rt, Rt] of RUNTIMES) {
    const emb = sustained.find((r) => r.design === `headcount-${rt}-embedded` && r.keys === 1);
    const pg = sustained.find((r) => r.design === `headcount-${rt}` && r.keys === 1);
    if (!emb && !pg && rt === "deno") continue;
    const name = `One hot key on ${Rt}: embedded store vs PostgreSQL`;
    const want = "≥ PostgreSQL's visits/s, every visit committed";
    if (!emb || !pg) out.push({ name, want, got: !emb && !pg ? "not measured" : `${emb ? "PostgreSQL" : "embedded store"} not measured`, met: null });
    else
      out.push({
        name,
        want,
        got: `${int(emb.visitsPerSec)} vs ${int(pg.visitsPerSec)} visits/s (${f1(emb.visitsPerSec / pg.visitsPerSec)}×); all committed: ${emb.allCommitted ? "yes" : "NO"}`,
        met: emb.visitsPerSec >= pg.visitsPerSec && emb.allCommitted,
      });
  }
  return out;
}

export function footprintSection(footprint: Row[], cgroup: Row[], sustained: Row[], limitMb: number, label: (d: string) => string): string[] {
  if (footprint.length === 0 && cgroup.length === 0) return [];
  const L: string[] = [];
  L.push("## Footprint");
  L.push("");
  const holdN = footprint[0]?.holdN ?? 10_000;
  L.push(
    `Per design, median of the runs: time from spawn to \`/readyz\` answering 200 (polled every 10 ms; a baseline has no \`/readyz\`, so its listening line), on a fresh data directory and on a restart over the same one (the first server stopped with SIGTERM); peak RSS of each start (\`VmHWM\` of the server process at ready); idle RSS (\`VmRSS\`) a few seconds after ready, before any socket; RSS with ${int(holdN)} idle sockets on one key once every socket has had its hello, and the difference per socket. On PostgreSQL "fresh" is only a first start: the database is the bench's, already migrated. The server is the process itself (Deno runs without \`deno task\`'s shell; test/helpers/launch.ts). MB are MiB.`,
  );
  L.push("");
  L.push(`| design | store | ready: fresh ms | restart ms | peak RSS: fresh MB | restart MB | idle RSS: fresh MB | restart MB | RSS with ${int(holdN)} sockets MB | KiB/socket | sockets held | runs |`);
  L.push("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|");
  for (const r of footprint) {
    const held = (r.held as number[]).map((h) => (h === r.holdN ? int(h) : `**${int(h)}**`)).join(", ");
    const runs = r.failedRuns ? `${r.runs} (**${r.failedRuns} failed**)` : String(r.runs);
    L.push(`| ${label(r.design)} | ${r.store} | ${int(r.readyMsFresh)} | ${int(r.readyMsRestart)} | ${f1(r.peakMbFresh)} | ${f1(r.peakMbRestart)} | ${f1(r.idleMbFresh)} | ${f1(r.idleMbRestart)} | ${f1(r.holdMb)} | ${f1(r.kibPerSocket)} | ${held} | ${runs} |`);
  }
  const errors = footprint.flatMap((r) => (r.errors as string[]).map((e) => `${label(r.design)}: ${e}`));
  if (errors.length) {
    L.push("");
    L.push("Failed runs:");
    L.push("");
    for (const e of errors) L.push(`- ${e}`);
  }
  L.push("");
  if (cgroup.length) {
    const n = cgroup.find((r) => r.sockets)?.sockets ?? 5000;
    L.push(`### Inside a ${limitMb} MiB memory cgroup`);
    L.push("");
    L.push(
      `Each headcount design once more, on a fresh data directory, inside a new cgroup v1 memory cgroup (\`memory.limit_in_bytes\` ${limitMb} MiB, \`memory.swappiness\` 0) that the server enters before its first instruction (\`sh -c 'echo $$ > cgroup.procs && exec <server>'\`: the command \`npm start\` runs, without npm's own process). In order: it becomes ready; \`GET /\` answers 200 with the page; one WebSocket visit gets a hello whose total is the API's total + 1; it holds ${int(n)} sockets, every one with its hello; and the cgroup's OOM killer never fired (\`memory.oom_control\`). A step after a failed one is not reached. The peak is \`memory.max_usage_in_bytes\` (everything charged to the cgroup: the server's memory, page cache it brought in, socket buffers); \`failcnt\` counts charges that hit the limit and made the kernel reclaim. The server's own \`VmHWM\` (read after the last step) also counts file pages it maps but another process brought in, which the cgroup is not charged for.`,
    );
    L.push("");
    L.push(`| design | store | ${STEP_COLUMNS.join(" | ")} | cgroup peak MiB | server VmHWM MiB | failcnt | oom_kill | result |`);
    L.push(`|---|---|${STEP_COLUMNS.map(() => "---").join("|")}|---:|---:|---:|---:|---|`);
    for (const r of cgroup) {
      if (r.unavailable) {
        L.push(`| ${label(r.design)} | | not run: ${r.unavailable} |${STEP_COLUMNS.slice(1).map(() => " |").join("")} | | | | | not run |`);
        continue;
      }
      const cells = STEP_COLUMNS.map((s) => cell((r.steps as Row[]).find((x) => x.step === s)));
      L.push(`| ${label(r.design)} | ${r.store ?? ""} | ${cells.join(" | ")} | ${f1(r.maxUsageMb)} | ${f1(r.vmHwmMb)} | ${int(r.failcnt)} | ${int(r.oomKill)} | ${r.passed ? "**pass**" : `**FAIL** at ${r.failedAt}`} |`);
    }
    L.push("");
  }
  L.push("### Targets (footprint)");
  L.push("");
  L.push("| target | wanted | measured | |");
  L.push("|---|---|---|---|");
  for (const t of footprintTargets(footprint, cgroup, sustained, limitMb)) {
    L.push(`| ${t.name} | ${t.want} | ${t.got} | ${t.met === true ? "**met**" : t.met === false ? "**missed**" : "not decided"} |`);
  }
  L.push("");
  return L;
}
