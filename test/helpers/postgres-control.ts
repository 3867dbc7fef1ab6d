import { execFileSync } from "node:child_process";
import { readdirSync } from "node:fs";
import postgres from "postgres";
import { TEST_DATABASE_URL } from "./env.ts";

// Stops and starts the machine's PostgreSQL cluster for outage tests. Only
// suites named *.disruptive.test.ts may call these (they run alone).

const version = () => readdirSync("/etc/postgresql")[0]!;

function ctl(action: "stop" | "start" | "restart"): void {
  execFileSync("pg_ctlcluster", ["--skip-systemctl-redirect", version(), "main", action], { stdio: "pipe" });
}

export async function waitForPostgres(timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const sql = postgres(TEST_DATABASE_URL, { max: 1, connect_timeout: 2, onnotice: () => {} });
    try {
      await sql`select 1`;
      return;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 200));
    } finally {
      await sql.end({ timeout: 1 });
    }
  }
}

export function stopPostgres(): void {
  ctl("stop");
}

export async function startPostgres(): Promise<void> {
  try {
    ctl("start");
  } catch {
    // "Cluster is already running" is fine; anything else surfaces through the wait.
  }
  await waitForPostgres();
}

export async function restartPostgres(): Promise<void> {
  ctl("restart");
  await waitForPostgres();
}

/** Direct SQL against the test database. */
export async function withSql<T>(fn: (sql: postgres.Sql) => Promise<T>): Promise<T> {
  const sql = postgres(TEST_DATABASE_URL, { max: 1, onnotice: () => {} });
  try {
    return await fn(sql);
  } finally {
    await sql.end({ timeout: 1 });
  }
}
