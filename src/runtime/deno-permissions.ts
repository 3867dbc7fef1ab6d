/// <reference path="./deno-globals.d.ts" />
// The narrowest `deno run` permissions that serve this configuration
// (https://docs.deno.com/runtime/fundamentals/security/). `deno task start`
// runs this file (with --allow-env=<the names below> only) inside a command
// substitution and passes what it prints to `deno run src/runtime/deno.ts`, so
// the flags follow PORT, HOST, DATA_DIR and DATABASE_URL instead of being
// fixed in deno.json. It only prints flags; deno.ts does all the checking.
//
//   net    the listen address, and the PostgreSQL host(s) when DATABASE_URL is set
//   read   public/, node_modules/, and the data dir
//   write  the data dir (embedded store only: headcount.db, its -wal, headcount.pid)
//   env    all of it: Deno.env.toObject() needs it, and postgres.js reads PG* variables
//
// Not needed, found by running without them: --allow-sys, --allow-ffi
// (node:sqlite is built into Deno) and --allow-run (the data directory's lock
// is SQLite's own file lock, which dies with its process: nothing to check).
// Deno asks for --allow-all to read /proc/self/limits, so the task passes
// `ulimit -n` in HEADCOUNT_OPEN_FILE_LIMIT (fd-limit.ts).

import { isAbsolute, join, resolve } from "node:path";

export const ENV_NAMES = ["PORT", "HOST", "DATA_DIR", "DATABASE_URL", "PGHOST", "PGPORT"] as const;

type Env = Readonly<Partial<Record<(typeof ENV_NAMES)[number], string>>>;

const set = (v: string | undefined) => (v === undefined || v.trim() === "" ? undefined : v.trim());

function hostPort(host: string, port: string): string {
  return `${host.includes(":") && !host.startsWith("[") ? `[${host}]` : host}:${port}`;
}

/** The host:port pairs postgres.js will dial for `url` (one or several, comma-separated). */
export function databaseHosts(url: string, env: Env): string[] {
  const authority = /^postgres(?:ql)?:\/\/(?:[^@/?#]*@)?([^/?#]*)/.exec(url)?.[1] ?? "";
  const defaultPort = set(env.PGPORT) ?? "5432";
  const hosts = authority === "" ? [set(env.PGHOST) ?? "localhost"] : authority.split(",");
  return hosts
    .filter((h) => !decodeURIComponent(h).startsWith("/")) // a unix socket is a file, not a net permission
    .map((h) => {
      const m = /^(\[[^\]]*\]|[^:]*)(?::(\d+))?$/.exec(h);
      return hostPort(m?.[1] || "localhost", m?.[2] ?? defaultPort);
    });
}

export interface DenoPermissions {
  flags: string[];
  /** Entries left out: Deno splits allow-lists on commas and `deno task` splits words on whitespace. */
  ungrantable: string[];
}

/** `deno run` permission flags for this environment; `root` is the project directory. */
export function denoPermissions(env: Env, root: string): DenoPermissions {
  const host = set(env.HOST) ?? "127.0.0.1";
  const port = set(env.PORT) ?? "8080";
  // PORT=0 takes whatever port the kernel picks, which is unknown here: grant
  // the host, so the server can listen again on that port (src/runtime/deno.ts).
  const net = [port === "0" ? hostPort(host, "").replace(/:$/, "") : hostPort(host, port)];
  const read = ["public", "node_modules"].map((dir) => join(root, dir));
  const write: string[] = [];
  const databaseUrl = set(env.DATABASE_URL);
  if (databaseUrl) {
    net.push(...databaseHosts(databaseUrl, env));
  } else {
    const raw = set(env.DATA_DIR) ?? "./data";
    const dataDir = isAbsolute(raw) ? raw : resolve(raw);
    read.push(dataDir);
    write.push(dataDir);
  }
  const ungrantable: string[] = [];
  const flags: string[] = [];
  const allow = (name: string, items: string[]) => {
    ungrantable.push(...items.filter((item) => /[\s,]/.test(item)));
    const ok = items.filter((item) => !/[\s,]/.test(item));
    // Never an empty list: Deno refuses `--allow-write=` outright.
    if (ok.length > 0) flags.push(`--allow-${name}=${ok.join(",")}`);
  };
  allow("net", net);
  allow("read", read);
  flags.push("--allow-env");
  allow("write", write);
  return { flags, ungrantable: [...new Set(ungrantable)] };
}

// `deno run --allow-env=<ENV_NAMES> src/runtime/deno-permissions.ts` prints
// the flags on one line. An entry that cannot be granted is left out with a
// warning, and deno.ts then stops with Deno's "Requires ... access" naming it.
if (import.meta.main) {
  const env = Object.fromEntries(ENV_NAMES.map((name) => [name, Deno.env.get(name)]));
  const root = decodeURIComponent(new URL("../..", import.meta.url).pathname).replace(/\/$/, "");
  const { flags, ungrantable } = denoPermissions(env, root);
  for (const item of ungrantable) console.error(`deno permissions: cannot grant ${JSON.stringify(item)} (contains a comma or whitespace)`);
  console.log(flags.join(" "));
}
