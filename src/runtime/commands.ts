import process from "node:process";
import type { Env } from "../core/config.ts";
import type { CommandOutput } from "../db/copy-cli.ts";

// The data commands, for the two entries that offer them: the single
// binary (`headcount db:copy --from … --to …`, `headcount db:migrate`, run
// by bun.ts before it would serve) and Node (`npm run db:copy -- …`,
// `npm run db:migrate`, through db-cli.ts). The commands themselves are in
// src/db/ and get their arguments, settings and output from here.

/** How the user typed a command: `headcount db:copy`, or npm's `npm run db:copy --`. */
export type Invocation = "binary" | "npm";

type Command = (args: string[], env: Env, out: CommandOutput, invocation: Invocation) => Promise<number>;

const typed = (invocation: Invocation, command: string, withArgs: boolean) =>
  invocation === "binary" ? `headcount ${command}` : `npm run ${command}${withArgs ? " --" : ""}`;

// Each command's code is loaded only when it runs.
const COMMANDS = new Map<string, Command>([
  ["db:copy", async (args, _env, out, how) => (await import("../db/copy-cli.ts")).copyCli(args, out, typed(how, "db:copy", true))],
  [
    "db:migrate",
    async (args, env, out, how) => {
      if (args.length === 0) return (await import("../db/migrate-cli.ts")).migrateCli(env, out);
      out.stderr(`db:migrate: it takes no arguments (the settings are DATABASE_URL and DATA_DIR)\n${usage(how)}\n`);
      return 2;
    },
  ],
]);

export function usage(how: Invocation): string {
  const serve: Array<[string, string]> = how === "binary" ? [["headcount", "serve; every setting is an environment variable (see the README)"]] : [];
  const entries: Array<[string, string]> = [
    ...serve,
    [`${typed(how, "db:copy", true)} --from <store> --to <store> [--force]`, "copy counters, history and settings; a store is a data directory or a postgres:// URL"],
    [typed(how, "db:migrate", false), "migrate DATABASE_URL, else the SQLite file in DATA_DIR, and exit"],
  ];
  return `usage: ${entries.map(([line, what]) => `${line}\n         ${what}`).join("\n       ")}`;
}

/**
 * Runs the command `args[0]` names with the rest and resolves with its exit
 * code, or with undefined when `args` is empty (nothing to run). `--help`
 * prints the usage; an unknown word is refused with 2.
 */
export async function runCommand(args: string[], env: Env, out: CommandOutput, how: Invocation): Promise<number | undefined> {
  const [word, ...rest] = args;
  if (word === undefined) return undefined;
  const command = COMMANDS.get(word);
  if (command) return command(rest, env, out, how);
  if (word === "--help" || word === "-h" || word === "help") {
    out.stdout(`${usage(how)}\n`);
    return 0;
  }
  out.stderr(`headcount: unknown command ${JSON.stringify(word)}\n${usage(how)}\n`);
  return 2;
}

/** runCommand on this process's arguments, environment and streams; sets process.exitCode. False when there was no command. */
export async function runProcessCommand(how: Invocation): Promise<boolean> {
  const out: CommandOutput = { stdout: (t) => void process.stdout.write(t), stderr: (t) => void process.stderr.write(t) };
  const code = await runCommand(process.argv.slice(2), process.env, out, how);
  if (code === undefined) return false;
  process.exitCode = code;
  return true;
}
