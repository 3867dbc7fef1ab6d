// Servers under test, /proc readings and the pool of load-generator processes.
import { spawn, fork, type ChildProcess } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import postgres from "postgres";

export const ROOT = decodeURIComponent(new URL("..", import.meta.url).pathname).replace(/\/$/, "");
const BIN = join(ROOT, "node_modules", ".bin");
export const now = (): number => Number(process.hrtime.bigint()) / 1e6;
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---- designs ----------------------------------------------------------------

export type DesignName = "headcount-node" | "headcount-bun" | "floor-node" | "floor-bun" | "seed" | "headcount-pglite";

export interface Design {
  name: DesignName;
  label: string;
  cmd: string;
  args: string[];
  /** Why it cannot run here, if it cannot. */
  missing?: string;
  usesPg: boolean;
}

/** Extra node flags for headcount (Node) only, e.g. `--max-semi-space-size=8` (README "Operations"). */
export const NODE_FLAGS = (process.env.BENCH_NODE_FLAGS ?? "").split(" ").filter(Boolean);

export function designs(): Design[] {
  const bunTs = join(ROOT, "src/runtime/bun.ts");
  return [
    { name: "headcount-node", label: "headcount (Node)", cmd: join(BIN, "node"), args: [...NODE_FLAGS, "src/runtime/node.ts"], usesPg: true },
    {
      name: "headcount-bun",
      label: "headcount (Bun)",
      cmd: join(BIN, "bun"),
      args: ["src/runtime/bun.ts"],
      usesPg: true,
      missing: existsSync(bunTs) ? undefined : "src/runtime/bun.ts does not exist yet",
    },
    { name: "floor-node", label: "floor: bare ws (Node)", cmd: join(BIN, "node"), args: ["bench/baselines/floor-node.ts"], usesPg: true },
    { name: "floor-bun", label: "floor: bare Bun.serve", cmd: join(BIN, "bun"), args: ["bench/baselines/floor-bun.ts"], usesPg: true },
    { name: "seed", label: "seed design (per-visit UPDATE + broadcast)", cmd: join(BIN, "node"), args: ["bench/baselines/seed.ts"], usesPg: true },
    { name: "headcount-pglite", label: "headcount (Node, embedded PGlite)", cmd: join(BIN, "node"), args: ["src/runtime/node.ts"], usesPg: false },
  ];
}

export interface Server {
  pid: number;
  port: number;
  wsUrl: string;
  proc: ChildProcess;
  logs: string[];
  kill(): Promise<void>;
}

export function serverEnv(databaseUrl: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    ...(process.env as Record<string, string>),
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
    WRANGLER_SEND_METRICS: "false",
    DO_NOT_TRACK: "1",
    ...extra,
  };
}

export function startServer(d: Design, env: Record<string, string>, extraArgs: string[] = [], timeoutMs = 30_000): Promise<Server> {
  const proc = spawn(d.cmd, [...extraArgs, ...d.args], { cwd: ROOT, env, stdio: ["ignore", "pipe", "pipe"] });
  const logs: string[] = [];
  const exited = new Promise<void>((r) => proc.once("exit", () => r()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill("SIGKILL");
      reject(new Error(`${d.name} did not start within ${timeoutMs} ms:\n${logs.slice(-20).join("\n")}`));
    }, timeoutMs);
    let buf = "";
    proc.stdout!.on("data", (c: Buffer) => {
      buf += c.toString();
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (logs.length < 2000) logs.push(line);
        if (!line.startsWith("{")) continue;
        try {
          const rec = JSON.parse(line) as { msg?: string; port?: number };
          if (rec.msg === "listening" && typeof rec.port === "number") {
            clearTimeout(timer);
            const port = rec.port;
            resolve({
              pid: proc.pid!,
              port,
              proc,
              logs,
              wsUrl: `ws://127.0.0.1:${port}/ws`,
              kill: async () => {
                if (proc.exitCode === null && proc.signalCode === null) proc.kill("SIGKILL");
                await exited;
              },
            });
          }
        } catch {
          /* not JSON */
        }
      }
    });
    proc.stderr!.on("data", (c: Buffer) => {
      if (logs.length < 2000) logs.push(c.toString().trimEnd());
    });
    void exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`${d.name} exited (${proc.exitCode ?? proc.signalCode}) before listening:\n${logs.slice(-20).join("\n")}`));
    });
  });
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
