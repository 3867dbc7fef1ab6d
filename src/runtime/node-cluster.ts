import cluster from "node:cluster";
import process from "node:process";
import type { Config } from "../core/config.ts";
import { ConfigError } from "../core/errors.ts";
import type { Logger } from "../core/ports.ts";

// WORKERS=n: n Node processes behind node:cluster's round-robin balancer on
// one port, all sharing PostgreSQL (fan-out and presence go through it). The
// primary only forks, restarts a crashed worker, and relays shutdown.

export function checkClusterConfig(config: Config): void {
  if (config.workers > 1 && !config.databaseUrl) {
    throw new ConfigError(
      "WORKERS",
      `WORKERS=${config.workers} needs DATABASE_URL: the embedded store allows one process (set WORKERS=1 or use PostgreSQL)`,
    );
  }
}

export function runPrimary(config: Config, log: Logger): void {
  // Round-robin is the default on Linux; set it so no platform default decides.
  cluster.schedulingPolicy = cluster.SCHED_RR;
  let stopping = false;
  const fork = () => cluster.fork();
  for (let i = 0; i < config.workers; i++) fork();

  cluster.on("exit", (worker, code, signal) => {
    if (stopping) {
      if (Object.keys(cluster.workers ?? {}).length === 0) {
        log.info("all workers stopped");
        process.exit(0);
      }
      return;
    }
    log.error("worker died; restarting", { worker: worker.process.pid, code, signal });
    setTimeout(fork, 500);
  });

  const stop = (signal: NodeJS.Signals) => {
    if (stopping) {
      for (const w of Object.values(cluster.workers ?? {})) w?.process.kill("SIGKILL");
      process.exit(130);
    }
    stopping = true;
    log.info("primary relaying shutdown", { signal });
    for (const w of Object.values(cluster.workers ?? {})) w?.process.kill("SIGTERM");
    setTimeout(() => process.exit(1), config.shutdownTimeoutMs + 2000).unref();
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
}
