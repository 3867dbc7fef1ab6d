import { existsSync, mkdtempSync, cpSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ChildProcess } from "node:child_process";
import {
  headcountCommand, inheritedEnv, launch, offlineEnv, ROOT, runToExit as run, withFdLimit, type Command, type RuntimeName,
} from "./launch.ts";

// Starts a real server as a child process on a free port (PORT=0; the server
// logs the port it bound) and stops it with a real signal. The launching
// itself is test/helpers/launch.ts, shared with the benchmark.

export { offlineEnv, ROOT, withFdLimit, type RuntimeName };

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
  /** The server process itself (on Deno too: no `deno task` shell in between). */
  pid: number;
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
 * set their own. MAX_KEYS too: the shared test database keeps every run's
 * keys (each test makes fresh ones), so it passes the default 100,000 after
 * a few dozen runs; test/key-limit.test.ts sets its own.
 */
export const LIFTED_LIMITS: Record<string, string> = {
  RATE_LIMIT_BURST: "1000000",
  RATE_LIMIT_PER_SEC: "1000000",
  MAX_SOCKETS_PER_IP: "1000000",
  MAX_CONNECTIONS_PER_IP: "1000000",
  MAX_KEYS: "100000000",
};

/** A new, empty embedded data directory: the server creates and migrates its SQLite file (milliseconds). */
export function freshDataDir(): string {
  return mkdtempSync(join(tmpdir(), "headcount-test-"));
}

/** headcount's command on `runtime` (Deno's permissions follow `env`: PORT, HOST, DATA_DIR, DATABASE_URL). */
export function commandFor(runtime: RuntimeName, env: Record<string, string | undefined> = process.env): Command {
  return headcountCommand(runtime, env);
}

function baseEnv(extra: Record<string, string> | undefined): Record<string, string> {
  return { ...inheritedEnv(), ...offlineEnv(), PORT: "0", HOST: "127.0.0.1", ...LIFTED_LIMITS, ...extra };
}

export async function startServer(opts: StartOptions = {}): Promise<RunningServer> {
  const runtime = opts.runtime ?? "node";
  const env = baseEnv({ LOG_LEVEL: "info", ...opts.env });
  let dataDir: string | undefined;
  if (!env.DATABASE_URL) {
    dataDir = opts.dataDir ?? freshDataDir();
    env.DATA_DIR = dataDir;
  }
  const server = await launch({
    name: `${runtime} server`,
    command: withFdLimit(headcountCommand(runtime, env), opts.fdLimit),
    env,
    timeoutMs: opts.timeoutMs,
  });
  const exited = server.exited.then((e) => e.code);
  return {
    port: server.port,
    url: server.url,
    pid: server.pid,
    dataDir,
    proc: server.proc,
    logs: server.logs,
    wsUrl: server.wsUrl,
    exited,
    stop: (signal = "SIGTERM") => server.stop(signal).then((e) => e.code),
  };
}

/** Runs a server command to completion (for start-up failures) and returns code and output. */
export function runToExit(opts: StartOptions = {}): Promise<{ code: number | null; output: string }> {
  const runtime = opts.runtime ?? "node";
  const env = baseEnv(opts.env);
  if (!env.DATABASE_URL && opts.dataDir) env.DATA_DIR = opts.dataDir;
  return run(withFdLimit(headcountCommand(runtime, env), opts.fdLimit), env, opts.timeoutMs);
}
