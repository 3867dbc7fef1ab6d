// The designs under test (started through test/helpers/launch.ts, the
// launcher the tests use too), /proc readings and the pool of load-generator
// processes.
import { fork, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import postgres from "postgres";
import {
  BIN, headcountCommand, inheritedEnv, launch, offlineEnv, ROOT, scriptCommand, type Command, type Exit, type Launched,
} from "../test/helpers/launch.ts";

export { ROOT };
export const now = (): number => Number(process.hrtime.bigint()) / 1e6;
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---- designs ----------------------------------------------------------------

export type DesignName =
  | "headcount-node"
  | "headcount-bun"
  | "headcount-deno"
  | "headcount-node-embedded"
  | "headcount-bun-embedded"
  | "headcount-deno-embedded"
  | "floor-node"
  | "floor-bun"
  | "seed"
  | "before-node"
  | "before-bun";

export interface Design {
  name: DesignName;
  label: string;
  runtime: "node" | "bun" | "deno";
  /** headcount itself (has /readyz, the page, the API), or a baseline script. */
  headcount: boolean;
  /** "embedded": no DATABASE_URL, a fresh DATA_DIR per server. */
  store: "postgres" | "embedded";
  /** Why it cannot run here, if it cannot. */
  missing?: string;
  command(env: Record<string, string>, flags?: string[]): Command;
}

/** Extra node flags for headcount (Node) only, e.g. `--max-semi-space-size=8` (README "Operations"). */
export const NODE_FLAGS = (process.env.BENCH_NODE_FLAGS ?? "").split(" ").filter(Boolean);

export function designs(): Design[] {
  const hc = (runtime: Design["runtime"], store: Design["store"]): Design => {
    const entry = join(ROOT, `src/runtime/${runtime}.ts`);
    const Rt = runtime[0]!.toUpperCase() + runtime.slice(1);
    return {
      name: `headcount-${runtime}${store === "embedded" ? "-embedded" : ""}` as DesignName,
      label: `headcount (${Rt}${store === "embedded" ? ", embedded" : ""})`,
      runtime,
      headcount: true,
      store,
      missing: existsSync(entry) ? undefined : `${entry} does not exist`,
      command: (env, flags = []) => headcountCommand(runtime, env, runtime === "node" ? [...NODE_FLAGS, ...flags] : flags),
    };
  };
  // An A/B against an older headcount: BENCH_BEFORE=<a worktree of the old commit> adds
  // before-node and before-bun, the old tree's entries on PostgreSQL (its node_modules a
  // symlink to ours), measured in the same run as the current code.
  const before = (runtime: "node" | "bun"): Design[] => {
    const dir = process.env.BENCH_BEFORE;
    if (!dir) return [];
    const entry = join(dir, `src/runtime/${runtime}.ts`);
    return [{
      name: `before-${runtime}`, label: `headcount before (${runtime === "node" ? "Node" : "Bun"}, ${dir})`, runtime, headcount: true, store: "postgres",
      missing: existsSync(entry) ? undefined : `${entry} does not exist`,
      command: (_env, flags = []) => ({ ...scriptCommand(runtime, entry, flags), cwd: dir }),
    }];
  };
  const baseline = (name: DesignName, label: string, runtime: "node" | "bun", script: string): Design => ({
    name, label, runtime, headcount: false, store: "postgres",
    command: (_env, flags = []) => scriptCommand(runtime, script, flags),
  });
  return [
    hc("node", "postgres"),
    hc("bun", "postgres"),
    hc("deno", "postgres"),
    hc("node", "embedded"),
    hc("bun", "embedded"),
    hc("deno", "embedded"),
    baseline("floor-node", "floor: bare ws (Node)", "node", "bench/baselines/floor-node.ts"),
    baseline("floor-bun", "floor: bare Bun.serve", "bun", "bench/baselines/floor-bun.ts"),
    baseline("seed", "seed design (per-visit UPDATE + broadcast)", "node", "bench/baselines/seed.ts"),
    ...before("node"),
    ...before("bun"),
  ];
}

export interface Server {
  pid: number;
  port: number;
  url: string;
  wsUrl: string;
  proc: ChildProcess;
  logs: string[];
  /** performance.now() at spawn and at the listening line. */
  spawnedAt: number;
  listeningAt: number;
  /** What the listening line says, e.g. headcount's `store` ("pglite", "sqlite", "postgres"). */
  listening: Record<string, unknown>;
  /** The embedded store's directory, if this server has one. */
  dataDir: string | undefined;
  exited: Promise<Exit>;
  alive(): boolean;
  /** SIGKILL, wait for the exit, remove a data directory the bench made for it. */
  kill(): Promise<void>;
  /** SIGTERM (SIGKILL after graceMs), wait for the exit; keeps the data directory. */
  stop(graceMs?: number): Promise<Exit>;
}

/** Environment every design gets; `databaseUrl` is dropped for the embedded store. */
export function serverEnv(databaseUrl: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    ...inheritedEnv(),
    ...offlineEnv(),
    PORT: "0",
    HOST: "127.0.0.1",
    LOG_LEVEL: "info",
    DATABASE_URL: databaseUrl,
    BROADCAST_INTERVAL_MS: "25",
    PG_POOL_MAX: "10",
    // Limits are lifted only through the environment (issue 4: no bench-only code path).
    RATE_LIMIT_BURST: "1000000",
    RATE_LIMIT_PER_SEC: "1000000",
    MAX_SOCKETS_PER_IP: "1000000",
    MAX_SOCKETS: "19500",
    // Every client comes from 127.0.0.1; an event stream stays an HTTP connection, which Node's server caps per address.
    MAX_CONNECTIONS_PER_IP: "1000000",
    // The bench database keeps every run's keys (fresh ones per run).
    MAX_KEYS: "100000000",
    ...extra,
  };
}

export const freshDataDir = () => mkdtempSync(join(tmpdir(), "headcount-bench-"));

/** Servers still running: finish() kills them so an aborted bench leaves nothing behind. */
export const live = new Set<Server>();

export interface StartOptions {
  /** For the embedded store: this directory (kept), instead of a fresh one (removed on kill). */
  dataDir?: string;
  /** Runtime flags, e.g. --cpu-prof. */
  flags?: string[];
  /** Wraps the final command, e.g. in a cgroup (test/helpers/launch.ts inCgroup). */
  wrap?: (c: Command) => Command;
  timeoutMs?: number;
}

export async function startServer(d: Design, env: Record<string, string>, opts: StartOptions = {}): Promise<Server> {
  env = { ...env };
  let dataDir: string | undefined;
  let owned = false;
  if (d.store === "embedded") {
    delete env.DATABASE_URL;
    owned = opts.dataDir === undefined;
    dataDir = opts.dataDir ?? freshDataDir();
    env.DATA_DIR = dataDir;
  }
  const command = d.command(env, opts.flags);
  let l: Launched;
  try {
    l = await launch({ name: d.name, command: opts.wrap ? opts.wrap(command) : command, env, timeoutMs: opts.timeoutMs ?? 60_000, maxLogLines: 2000 });
  } catch (err) {
    if (owned && dataDir) rmSync(dataDir, { recursive: true, force: true });
    throw err;
  }
  const server: Server = {
    pid: l.pid,
    port: l.port,
    url: l.url,
    wsUrl: `ws://127.0.0.1:${l.port}/ws`,
    proc: l.proc,
    logs: l.logs,
    spawnedAt: l.spawnedAt,
    listeningAt: l.listeningAt,
    listening: l.listening,
    dataDir,
    exited: l.exited,
    alive: l.alive,
    kill: async () => {
      await l.stop("SIGKILL");
      live.delete(server);
      if (owned && dataDir) rmSync(dataDir, { recursive: true, force: true });
    },
    stop: async (graceMs = 15_000) => {
      const e = await l.stop("SIGTERM", graceMs);
      live.delete(server);
      return e;
    },
  };
  live.add(server);
  void l.exited.then(() => live.delete(server));
  return server;
}

// ---- /proc --------------------------------------------------------------------

const TICK_MS = 10; // CLK_TCK = 100 on Linux

/** user + system CPU of a process (ms), from /proc/<pid>/stat. */
export function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(f[11]) + Number(f[12])) * TICK_MS; // fields 14, 15
}

/** CPU ms of every process whose command name starts with `comm` (e.g. the PostgreSQL backends). */
export function cpuMsByComm(comm: string): number {
  let total = 0;
  for (const pid of readdirSync("/proc")) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const name = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
      if (name.startsWith(comm)) total += cpuMs(Number(pid));
    } catch {
      /* exited */
    }
  }
  return total;
}

/** Busy CPU ms of the whole machine (all cores), from /proc/stat. */
export function machineBusyMs(): number {
  const f = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).slice(1).map(Number);
  const idle = (f[3] ?? 0) + (f[4] ?? 0);
  return (f.reduce((a, b) => a + b, 0) - idle) * TICK_MS;
}

function statusKb(pid: number, field: string): number {
  const s = readFileSync(`/proc/${pid}/status`, "utf8");
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(s);
  return m ? Number(m[1]) : NaN;
}
export const rssKb = (pid: number) => statusKb(pid, "VmRSS");
export const peakRssKb = (pid: number) => statusKb(pid, "VmHWM");

/** Waits until RSS stops moving (within 1%) over a second, then returns it. */
export async function settledRssKb(pid: number, maxMs = 8000): Promise<number> {
  const end = Date.now() + maxMs;
  let prev = rssKb(pid);
  await sleep(1000);
  for (;;) {
    const cur = rssKb(pid);
    if (Math.abs(cur - prev) <= prev * 0.01 || Date.now() > end) return Math.min(cur, prev);
    prev = cur;
    await sleep(1000);
  }
}

// ---- load-generator pool --------------------------------------------------------

export interface Progress {
  opened: number;
  hellos: number;
  reached: number;
  msgs: number;
  closed: number;
}

export class Client {
  readonly proc: ChildProcess;
  progress: Progress = { opened: 0, hellos: 0, reached: 0, msgs: 0, closed: 0 };
  #next = 1;
  #waiting = new Map<number, (m: Record<string, unknown>) => void>();
  #armed = new Map<number, () => void>();
  ready: Promise<void>;

  constructor(impl: string) {
    this.proc = fork(join(ROOT, "bench/client.ts"), [], {
      cwd: ROOT,
      env: { ...process.env, BENCH_CLIENT: impl },
      execPath: join(BIN, "node"),
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    });
    let onReady!: () => void;
    this.ready = new Promise((r) => (onReady = r));
    this.proc.on("message", (raw) => {
      const m = raw as Record<string, unknown>;
      if (m.ready) return onReady();
      if (m.progress) {
        this.progress = m.progress as Progress;
        return;
      }
      const id = m.id as number;
      if (m.armed) {
        this.#armed.get(id)?.();
        this.#armed.delete(id);
        return;
      }
      const w = this.#waiting.get(id);
      this.#waiting.delete(id);
      w?.(m);
    });
  }

  call(cmd: string, args: Record<string, unknown> = {}, onArmed?: () => void): Promise<Record<string, unknown>> {
    const id = this.#next++;
    if (onArmed) this.#armed.set(id, onArmed);
    return new Promise((resolve, reject) => {
      this.#waiting.set(id, (m) => (m.error ? reject(new Error(String(m.error))) : resolve(m)));
      this.proc.send({ cmd, id, ...args });
    });
  }

  reset(): void {
    this.progress = { opened: 0, hellos: 0, reached: 0, msgs: 0, closed: 0 };
  }

  exit(): void {
    try {
      this.proc.send({ cmd: "exit", id: 0 });
    } catch {
      /* gone */
    }
  }
}

// ---- database ----------------------------------------------------------------------

export async function ensureDatabase(adminUrl: string, name: string): Promise<string> {
  const admin = postgres(adminUrl, { max: 1, onnotice: () => {} });
  try {
    const rows = await admin`select 1 from pg_database where datname = ${name}`;
    if (rows.length === 0) await admin.unsafe(`create database ${name}`);
  } finally {
    await admin.end({ timeout: 5 });
  }
  const u = new URL(adminUrl);
  u.pathname = `/${name}`;
  return u.toString();
}

export function median(xs: number[]): number {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}
