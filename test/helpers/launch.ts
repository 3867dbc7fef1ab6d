// The one way the tests (test/helpers/server.ts) and the benchmark
// (bench/lib.ts) start a server as a child process: each runtime's command,
// an offline environment, PORT=0 and the JSON `{"msg":"listening","port":N}`
// line the server logs once it has bound, open-file limits and memory cgroups
// as wrappers that `exec` (so the pid we hold is the server's), and stopping
// with a real signal.
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { performance } from "node:perf_hooks";
import process from "node:process";
import { denoPermissions } from "../../src/runtime/deno-permissions.ts";

/** "binary": the single executable `npm run build` makes, at $HEADCOUNT_BINARY (test/binary.test.ts). */
export type RuntimeName = "node" | "bun" | "deno" | "worker" | "binary";

export interface Command {
  cmd: string;
  args: string[];
  /** Working directory (default ROOT). */
  cwd?: string;
  /** The child's whole environment, replacing the one the launcher was given. */
  env?: Record<string, string>;
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface LaunchOptions {
  /** For messages: "node server", "floor-bun", … */
  name: string;
  command: Command;
  /** The child's whole environment (nothing is inherited implicitly). */
  env: Record<string, string>;
  /** Milliseconds to wait for the listening line (default 30 s). */
  timeoutMs?: number;
  /** Keep only the last this many log lines (default: all). */
  maxLogLines?: number;
}

export interface Launched {
  /** The server process itself: every wrapper here ends in `exec`. */
  pid: number;
  port: number;
  url: string;
  proc: ChildProcess;
  logs: string[];
  /** performance.now() just before spawn and when the listening line arrived. */
  spawnedAt: number;
  listeningAt: number;
  /** The parsed listening line (headcount adds e.g. `store`). */
  listening: Record<string, unknown>;
  exited: Promise<Exit>;
  alive(): boolean;
  wsUrl(key?: string, resume?: string): string;
  /** Sends `signal`; after `graceMs` (if given) sends SIGKILL. Resolves on exit. */
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<Exit>;
}

export const ROOT = decodeURIComponent(new URL("../..", import.meta.url).pathname).replace(/\/$/, "");
export const BIN = join(ROOT, "node_modules", ".bin");

/** Environment that keeps every runtime offline (DEVELOPERS.md). */
export function offlineEnv(): Record<string, string> {
  return {
    WRANGLER_SEND_METRICS: "false",
    CLOUDFLARE_CF_FETCH_ENABLED: "false",
    DENO_NO_UPDATE_CHECK: "1",
    XDG_CONFIG_HOME: join(ROOT, ".xdg"),
    DO_NOT_TRACK: "1",
  };
}

/** A script run directly by a runtime, e.g. a bench baseline. */
export function scriptCommand(runtime: "node" | "bun", script: string, flags: string[] = []): Command {
  return { cmd: join(BIN, runtime), args: [...flags, script] };
}

/**
 * headcount's server on `runtime`, as its npm script / deno task runs it.
 * Deno is run directly rather than through `deno task start`, so the pid is
 * the server's and not the task shell's; the flags are the ones
 * src/runtime/deno-permissions.ts prints for this environment, and the open-file
 * limit is passed as the task passes it (deno.json).
 */
export function headcountCommand(runtime: RuntimeName, env: Record<string, string | undefined>, flags: string[] = []): Command {
  switch (runtime) {
    case "node":
      // As `npm start` runs it: the preload makes module loading cheap (src/runtime/node-preload.mjs).
      return scriptCommand("node", "src/runtime/node.ts", ["--import", "./src/runtime/node-preload.mjs", ...flags]);
    case "bun":
      return scriptCommand("bun", "src/runtime/bun.ts", flags);
    case "worker":
      return scriptCommand("node", "test/helpers/worker-dev.ts", flags);
    case "binary":
      return binaryCommand(env, flags);
    case "deno": {
      checkDenoTask();
      // denoPermissions resolves a relative DATA_DIR against our cwd; the server runs in ROOT.
      const raw = env.DATA_DIR?.trim() || "./data";
      const { flags: allow } = denoPermissions({ ...env, DATA_DIR: isAbsolute(raw) ? raw : resolve(ROOT, raw) }, ROOT);
      const deno = join(BIN, "deno");
      return {
        cmd: "sh",
        args: ["-c", 'HEADCOUNT_OPEN_FILE_LIMIT=$(ulimit -n); export HEADCOUNT_OPEN_FILE_LIMIT; exec "$0" "$@"', deno, "run", ...allow, ...flags, "src/runtime/deno.ts"],
      };
    }
  }
}

/**
 * The built executable at $HEADCOUNT_BINARY, run from its own directory as
 * on a machine with no Node, npm or Bun: cwd and HOME are that directory and
 * PATH names only an empty directory in it (/usr/bin has a Node here), so
 * nothing but the file itself can serve. Every other variable is passed on
 * (the settings), but npm's, Node's and Bun's own; Bun flags go in BUN_OPTIONS,
 * which a compiled executable reads.
 */
function binaryCommand(env: Record<string, string | undefined>, flags: string[]): Command {
  const binary = env.HEADCOUNT_BINARY;
  if (!binary || !isAbsolute(binary)) throw new Error("the binary runtime needs HEADCOUNT_BINARY: the absolute path of a built dist/headcount (test/binary.test.ts)");
  const dir = dirname(binary);
  const settings = Object.entries(env).filter(
    (e): e is [string, string] => e[1] !== undefined && !/^(PATH|HOME|PWD|OLDPWD|INIT_CWD|HEADCOUNT_BINARY)$|^(npm_|NODE_|BUN_)/i.test(e[0]),
  );
  const childEnv = { ...Object.fromEntries(settings), PATH: join(dir, "empty-bin"), HOME: dir };
  return { cmd: binary, args: [], cwd: dir, env: flags.length ? { ...childEnv, BUN_OPTIONS: flags.join(" ") } : childEnv };
}

/** If deno.json's start task stops being "permissions from deno-permissions.ts, then deno.ts", this file must follow it. */
function checkDenoTask(): void {
  const task = (JSON.parse(readFileSync(join(ROOT, "deno.json"), "utf8")) as { tasks?: { start?: { command?: string } } }).tasks?.start?.command ?? "";
  for (const part of ["HEADCOUNT_OPEN_FILE_LIMIT=", "src/runtime/deno-permissions.ts", "src/runtime/deno.ts"]) {
    if (!task.includes(part)) throw new Error(`deno.json's start task no longer has ${part}: update headcountCommand in test/helpers/launch.ts to run Deno the way it does`);
  }
}

/** Wraps a command in `bash -c 'ulimit -n N && exec …'` (lowering a limit needs no privilege). */
export function withFdLimit(command: Command, fdLimit: number | undefined): Command {
  if (fdLimit === undefined) return command;
  if (!Number.isInteger(fdLimit) || fdLimit < 16) throw new Error(`fdLimit must be a whole number of at least 16, got ${fdLimit}`);
  return { ...command, cmd: "/bin/bash", args: ["-c", `ulimit -n ${fdLimit} && exec "$0" "$@"`, command.cmd, ...command.args] };
}

/**
 * Runs a command inside a cgroup from its first instruction: the shell moves
 * itself into `<cgroupDir>/cgroup.procs`, then execs the command (same pid).
 */
export function inCgroup(command: Command, cgroupDir: string): Command {
  return { ...command, cmd: "/bin/sh", args: ["-c", 'echo $$ > "$0" && exec "$@"', join(cgroupDir, "cgroup.procs"), command.cmd, ...command.args] };
}

/** Starts the command and resolves once it logs `{"msg":"listening","port":N}`; rejects if it exits first or times out. */
export function launch(opts: LaunchOptions): Promise<Launched> {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const maxLines = opts.maxLogLines ?? Infinity;
  const logs: string[] = [];
  const log = (line: string) => {
    logs.push(line);
    if (logs.length > maxLines) logs.shift();
  };
  const spawnedAt = performance.now();
  const proc = spawn(opts.command.cmd, opts.command.args, { cwd: opts.command.cwd ?? ROOT, env: opts.command.env ?? opts.env, stdio: ["ignore", "pipe", "pipe"] });
  const exited = new Promise<Exit>((r) => proc.once("exit", (code, signal) => r({ code, signal })));
  const alive = () => proc.exitCode === null && proc.signalCode === null;
  const stop = (signal: NodeJS.Signals = "SIGTERM", graceMs?: number): Promise<Exit> => {
    if (!alive()) return exited;
    proc.kill(signal);
    if (graceMs !== undefined && signal !== "SIGKILL") {
      const t = setTimeout(() => alive() && proc.kill("SIGKILL"), graceMs);
      void exited.then(() => clearTimeout(t));
    }
    return exited;
  };

  return new Promise<Launched>((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill("SIGKILL");
      reject(new Error(`${opts.name} did not log "listening" within ${timeoutMs} ms:\n${logs.slice(-30).join("\n")}`));
    }, timeoutMs);
    let buffered = "";
    proc.stdout!.on("data", (chunk: Buffer) => {
      buffered += chunk.toString();
      let nl: number;
      while ((nl = buffered.indexOf("\n")) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        log(line);
        if (!line.startsWith("{")) continue;
        let rec: Record<string, unknown>;
        try {
          rec = JSON.parse(line) as Record<string, unknown>;
        } catch {
          continue; // not JSON: kept in the log
        }
        if (rec.msg !== "listening" || typeof rec.port !== "number") continue;
        clearTimeout(timer);
        const port = rec.port;
        resolve({
          pid: proc.pid!,
          port,
          url: `http://127.0.0.1:${port}`,
          proc,
          logs,
          spawnedAt,
          listeningAt: performance.now(),
          listening: rec,
          exited,
          alive,
          stop,
          wsUrl: (key = "/", resume?: string) =>
            `ws://127.0.0.1:${port}/ws?key=${encodeURIComponent(key)}${resume ? `&resume=${encodeURIComponent(resume)}` : ""}`,
        });
      }
    });
    proc.stderr!.on("data", (chunk: Buffer) => log(chunk.toString().trimEnd()));
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`${opts.name} exited (${signal ?? code}) before listening:\n${logs.slice(-30).join("\n")}`));
    });
  });
}

/**
 * Polls GET /readyz until it answers 200; resolves with performance.now() of
 * that answer. Rejects if the server exits or `timeoutMs` passes.
 */
export async function waitReady(server: Pick<Launched, "url" | "alive">, timeoutMs = 30_000, intervalMs = 10): Promise<number> {
  const end = performance.now() + timeoutMs;
  let last = "no answer";
  while (performance.now() < end) {
    if (!server.alive()) throw new Error(`server exited before /readyz answered 200 (last: ${last})`);
    try {
      const res = await fetch(`${server.url}/readyz`, { signal: AbortSignal.timeout(2000) });
      const at = performance.now();
      await res.body?.cancel();
      if (res.status === 200) return at;
      last = String(res.status);
    } catch (err) {
      last = (err as Error).message;
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  throw new Error(`/readyz did not answer 200 within ${timeoutMs} ms (last: ${last})`);
}

/** Runs a command to completion (for start-up failures) and returns its exit code and output. */
export function runToExit(command: Command, env: Record<string, string>, timeoutMs = 30_000): Promise<{ code: number | null; output: string }> {
  const proc = spawn(command.cmd, command.args, { cwd: command.cwd ?? ROOT, env: command.env ?? env, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  proc.stdout!.on("data", (c: Buffer) => (output += c.toString()));
  proc.stderr!.on("data", (c: Buffer) => (output += c.toString()));
  const timer = setTimeout(() => proc.kill("SIGKILL"), timeoutMs);
  return new Promise((resolve) =>
    proc.once("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    }),
  );
}

/** The environment this process runs with, as strings (for a child's env). */
export function inheritedEnv(): Record<string, string> {
  return Object.fromEntries(Object.entries(process.env).filter((e): e is [string, string] => e[1] !== undefined));
}
