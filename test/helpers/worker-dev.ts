// Runs the Workers build locally on workerd through wrangler's programmatic
// dev server, with the environment every runtime gets (test/helpers/server.ts):
//   PORT (0 = a free port), HOST        where it listens
//   DATA_DIR                            local persistence (.wrangler state), so totals survive a restart
//   DATABASE_URL                        Hyperdrive binding HYPERDRIVE with this local connection string
//   BROADCAST_INTERVAL_MS, RESUME_*, COMMIT_TIMEOUT_MS, LOG_LEVEL, …   passed as vars
// Prints {"msg":"listening","port":N} once the Worker answers HTTP; SIGTERM or
// SIGINT stops workerd and exits 0. Offline: no metrics, no update checks,
// no account (the env below is forced whatever the caller set).
//   node test/helpers/worker-dev.ts
//
// No workerd is ever left behind: the process you start is a small
// supervisor; wrangler and workerd run in a child that leads its own process
// group. The supervisor forwards SIGTERM/SIGINT, and when the child is gone
// kills what is left of its group; if the supervisor itself is killed
// (SIGKILL included), the child sees its IPC channel close and takes the
// whole group down.
import { spawn } from "node:child_process";
import process from "node:process";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseConfig } from "../../src/core/config.ts";

const ROOT = decodeURIComponent(new URL("../..", import.meta.url).pathname).replace(/\/$/, "");
process.env.WRANGLER_SEND_METRICS = "false";
process.env.CLOUDFLARE_CF_FETCH_ENABLED = "false";
process.env.XDG_CONFIG_HOME ??= join(ROOT, ".xdg");
// "log" shows the Worker's own JSON log lines (console.log); "warn" would hide them.
process.env.WRANGLER_LOG ??= "log";

/** Settings the Worker reads from its vars (README "Configuration"); the rest are for servers with a process. */
const PASSED_VARS = [
  "BROADCAST_INTERVAL_MS",
  "COMMIT_TIMEOUT_MS",
  "RESUME_TTL_S",
  "RESUME_SECRET",
  "LOG_LEVEL",
  "PG_CONNECT_TIMEOUT_S",
  "RATE_LIMIT_BURST",
  "RATE_LIMIT_PER_SEC",
  "MESSAGE_RATE_BURST",
  "MESSAGE_RATE_PER_SEC",
  "MAX_SOCKETS",
  "MAX_SOCKETS_PER_IP",
  "ALLOWED_ORIGINS",
  "TRUST_PROXY_HEADER",
  "TRUST_PROXY_HOPS",
  "IPV6_PREFIX",
  "MAX_BUFFERED_BYTES",
  "MAX_KEYS",
  "HISTORY_RETENTION_DAYS",
  "CORS_ORIGINS",
  "ADMIN_TOKEN",
  "WEBHOOK_RULES",
  "WEBHOOK_CONCURRENCY",
  "WEBHOOK_MAX_CONNECTIONS_PER_ORIGIN",
  "WEBHOOK_MAX_ATTEMPTS",
  "WEBHOOK_TIMEOUT_MS",
  "WEBHOOK_RETRY_BASE_MS",
  "SSE_KEEPALIVE_MS",
  "MAX_BUFFERED_BYTES",
];

const line = (record: Record<string, unknown>) =>
  process.stdout.write(JSON.stringify({ time: new Date().toISOString(), runtime: "worker-dev", ...record }) + "\n");

async function answers(url: URL, deadline: number): Promise<void> {
  for (;;) {
    try {
      const res = await fetch(new URL("/healthz", url));
      await res.body?.cancel();
      if (res.ok) return;
    } catch {
      // not yet
    }
    if (Date.now() > deadline) throw new Error(`${url.href} did not answer /healthz`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Miniflare refuses a Hyperdrive connection string without a password. A
 * server that trusts local connections (as the test server does) ignores the
 * placeholder; one that checks passwords needs the real one in DATABASE_URL.
 */
function localConnectionString(databaseUrl: string): string {
  const url = new URL(databaseUrl);
  if (url.password === "") url.password = "unused";
  return url.toString();
}

/** Until workerd is up there is nothing to stop gracefully: the group goes at once. */
let onSupervisorGone = () => killGroup(process.pid);

async function main(): Promise<void> {
  process.on("disconnect", () => onSupervisorGone());
  // Same validation as every runtime: a bad value stops start-up naming the variable.
  const config = parseConfig(process.env);
  const { unstable_startWorker } = await import("wrangler");

  const vars: Record<string, { type: "plain_text"; value: string }> = {};
  for (const name of PASSED_VARS) {
    const value = process.env[name];
    if (value !== undefined && value !== "") vars[name] = { type: "plain_text", value };
  }
  const hyperdrive = config.databaseUrl
    ? { HYPERDRIVE: { type: "hyperdrive" as const, id: "local", localConnectionString: localConnectionString(config.databaseUrl) } }
    : {};

  const worker = await unstable_startWorker({
    config: join(ROOT, "wrangler.toml"),
    bindings: { ...vars, ...hyperdrive },
    dev: {
      server: { hostname: config.host, port: config.port },
      inspector: false,
      persist: join(config.dataDir, "wrangler-state"),
      watch: false,
      liveReload: false,
    },
  });

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) process.exit(130);
    stopping = true;
    line({ level: "info", msg: "shutting down", signal });
    void worker.dispose().then(
      () => process.exit(0),
      (err: unknown) => {
        line({ level: "error", msg: "shutdown failed", err: String(err) });
        process.exit(1);
      },
    );
  };
  // A failed build or bad binding is logged by wrangler but leaves `ready` pending: give up after a while.
  const deadline = Date.now() + 75_000;
  const timer = setTimeout(() => {
    line({ level: "error", msg: "startup failed", err: "workerd did not become ready within 75 s (see wrangler's log above)" });
    void worker.dispose().finally(() => process.exit(1));
  }, deadline - Date.now());
  await worker.ready;
  // wrangler (signal-exit) installs handlers that exit with 128+signal; ours
  // disposes workerd first and exits 0, like every other runtime.
  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    process.removeAllListeners(signal);
    process.on(signal, () => stop(signal));
  }
  // The supervisor is gone (even SIGKILL): stop workerd, and if that hangs take the group down.
  onSupervisorGone = () => {
    setTimeout(() => killGroup(process.pid), 3000).unref();
    stop("supervisor gone");
  };
  const url = await worker.url;
  await answers(url, deadline);
  clearTimeout(timer);
  line({
    level: "info",
    msg: "listening",
    url: url.origin,
    port: Number(url.port),
    store: config.databaseUrl ? "postgres (hyperdrive)" : "durable-object-sqlite",
  });
}

function killGroup(pgid: number): void {
  try {
    process.kill(-pgid, "SIGKILL");
  } catch {
    // nothing left
  }
}

/** Runs this file again as the leader of a new process group, and never outlives it. */
function supervise(): void {
  const child = spawn(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url)], {
    env: { ...process.env, HEADCOUNT_WORKER_DEV_CHILD: "1" },
    stdio: ["ignore", "inherit", "inherit", "ipc"],
    detached: true,
  });
  const pgid = child.pid!;
  for (const signal of ["SIGTERM", "SIGINT"] as const) process.on(signal, () => child.kill(signal));
  process.on("exit", () => killGroup(pgid));
  child.on("exit", (code, signal) => {
    killGroup(pgid);
    process.exit(code ?? (signal ? 128 + 9 : 1));
  });
}

if (process.env.HEADCOUNT_WORKER_DEV_CHILD === "1") {
  main().catch((err: unknown) => {
    line({ level: "error", msg: "startup failed", err: err instanceof Error ? err.message : String(err) });
    process.exit(1);
  });
} else {
  supervise();
}
