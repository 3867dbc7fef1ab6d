import { spawn, type ChildProcess } from "node:child_process";
import { cpSync, existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

// Starts a real server as a child process on a free port (PORT=0; the server
// logs the port it bound) and stops it with a real signal.

export type RuntimeName = "node" | "bun" | "deno" | "worker";

export const ROOT = decodeURIComponent(new URL("../..", import.meta.url).pathname).replace(/\/$/, "");
const BIN = join(ROOT, "node_modules", ".bin");

export interface StartOptions {
  runtime?: RuntimeName;
  env?: Record<string, string>;
  /** Embedded store directory; a fresh temp dir when neither this nor DATABASE_URL is given. */
  dataDir?: string;
  /** Milliseconds to wait for the listening line. */
  timeoutMs?: number;
  /** Runs the server under `ulimit -n <fdLimit>` (soft and hard open-file limit). */
  fdLimit?: number;
}

export interface RunningServer {
  port: number;
  url: string;
  dataDir: string | undefined;
  proc: ChildProcess;
  logs: string[];
  wsUrl(key?: string, resume?: string): string;
  /** Sends a signal and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  exited: Promise<number | null>;
}

/**
 * Every test client comes from 127.0.0.1, so suites lift the per-address
 * limits through the environment (as an operator would); the abuse suites
 * set their own.
 */
export const LIFTED_LIMITS: Record<string, string> = {
  RATE_LIMIT_BURST: "1000000",
  RATE_LIMIT_PER_SEC: "1000000",
  MAX_SOCKETS_PER_IP: "1000000",
};

/**
 * A new embedded data directory: a copy of the migrated cluster made once per
 * run by test/global-setup.ts (initdb is the slow part of a first start), or
 * an empty directory when there is no template.
 */
export function freshDataDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "headcount-test-"));
  const template = process.env.HEADCOUNT_TEST_TEMPLATE;
  if (template && existsSync(join(template, "pgdata"))) cpSync(join(template, "pgdata"), join(dir, "pgdata"), { recursive: true });
  return dir;
}

export function commandFor(runtime: RuntimeName): { cmd: string; args: string[] } {
  switch (runtime) {
    case "node":
      return { cmd: join(BIN, "node"), args: ["src/runtime/node.ts"] };
    case "bun":
      return { cmd: join(BIN, "bun"), args: ["src/runtime/bun.ts"] };
    case "deno":
      return { cmd: join(BIN, "deno"), args: ["task", "--quiet", "start"] };
    case "worker":
      return { cmd: join(BIN, "node"), args: ["test/helpers/worker-dev.ts"] };
  }
}

/** Wraps a command in `bash -c 'ulimit -n N && exec …'` (lowering a limit needs no privilege); exec keeps the pid, so signals reach the server. */
export function withFdLimit(command: { cmd: string; args: string[] }, fdLimit: number | undefined): { cmd: string; args: string[] } {
  if (fdLimit === undefined) return command;
  if (!Number.isInteger(fdLimit) || fdLimit < 16) throw new Error(`fdLimit must be a whole number of at least 16, got ${fdLimit}`);
  return { cmd: "bash", args: ["-c", `ulimit -n ${fdLimit} && exec "$0" "$@"`, command.cmd, ...command.args] };
}

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

export function startServer(opts: StartOptions = {}): Promise<RunningServer> {
  const runtime = opts.runtime ?? "node";
  const env: Record<string, string> = {
    ...(process.env as Record<string, string>),
    ...offlineEnv(),
    PORT: "0",
    HOST: "127.0.0.1",
    LOG_LEVEL: "info",
    ...LIFTED_LIMITS,
    ...opts.env,
  };
  let dataDir: string | undefined;
  if (!env.DATABASE_URL) {
    dataDir = opts.dataDir ?? freshDataDir();
    env.DATA_DIR = dataDir;
  }
  const { cmd, args } = withFdLimit(commandFor(runtime), opts.fdLimit);
  const proc = spawn(cmd, args, { cwd: ROOT, env, stdio: ["ignore", "pipe", "pipe"] });
  const logs: string[] = [];
  const exited = new Promise<number | null>((resolve) => proc.once("exit", (code) => resolve(code)));

  return new Promise<RunningServer>((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill("SIGKILL");
      reject(new Error(`${runtime} server did not start within ${opts.timeoutMs ?? 30_000} ms:\n${logs.join("\n")}`));
    }, opts.timeoutMs ?? 30_000);
    let buffered = "";
    const onData = (chunk: Buffer) => {
      buffered += chunk.toString();
      let nl: number;
      while ((nl = buffered.indexOf("\n")) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        logs.push(line);
        if (!line.startsWith("{")) continue;
        try {
          const rec = JSON.parse(line) as { msg?: string; port?: number };
          if (rec.msg === "listening" && typeof rec.port === "number") {
            clearTimeout(timer);
            const port = rec.port;
            resolve({
              port,
              url: `http://127.0.0.1:${port}`,
              dataDir,
              proc,
              logs,
              exited,
              wsUrl: (key = "/", resume?: string) =>
                `ws://127.0.0.1:${port}/ws?key=${encodeURIComponent(key)}${resume ? `&resume=${encodeURIComponent(resume)}` : ""}`,
              stop: (signal = "SIGTERM") => {
                if (proc.exitCode !== null || proc.signalCode !== null) return exited;
                proc.kill(signal);
                return exited;
              },
            });
          }
        } catch {
          // not JSON: keep it in the log
        }
      }
    };
    proc.stdout!.on("data", onData);
    proc.stderr!.on("data", (chunk: Buffer) => logs.push(chunk.toString().trimEnd()));
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`${runtime} server exited with ${code} before listening:\n${logs.join("\n")}`));
    });
  });
}

/** Runs a server command to completion (for start-up failures) and returns code and output. */
export function runToExit(opts: StartOptions = {}): Promise<{ code: number | null; output: string }> {
  const runtime = opts.runtime ?? "node";
  const env: Record<string, string> = {
    ...(process.env as Record<string, string>),
    ...offlineEnv(),
    PORT: "0",
    HOST: "127.0.0.1",
    ...LIFTED_LIMITS,
    ...opts.env,
  };
  if (!env.DATABASE_URL && opts.dataDir) env.DATA_DIR = opts.dataDir;
  const { cmd, args } = commandFor(runtime);
  const proc = spawn(cmd, args, { cwd: ROOT, env, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  proc.stdout!.on("data", (c: Buffer) => (output += c.toString()));
  proc.stderr!.on("data", (c: Buffer) => (output += c.toString()));
  const timer = setTimeout(() => proc.kill("SIGKILL"), 30_000);
  return new Promise((resolve) =>
    proc.once("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    }),
  );
}
