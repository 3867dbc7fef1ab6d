import process from "node:process";

// The single binary is also the data tool (README "One binary"):
// `headcount db:copy --from … --to …` and `headcount db:migrate` run the
// same CLIs as `npm run db:copy` / `npm run db:migrate`. Those read
// process.argv and process.env themselves and run when imported (they are
// also entry files for Node), so the command word is taken out of argv
// before the import.

const COMMANDS = new Map<string, () => Promise<unknown>>([
  ["db:copy", () => import("../db/copy-cli.ts")],
  ["db:migrate", () => import("../db/migrate-cli.ts")],
]);

const USAGE = `usage: headcount                  serve (every setting is an environment variable: see the README)
       headcount db:copy --from <store> --to <store> [--force]
                                  copy counters, history and settings; a store is a data directory or a postgres:// URL
       headcount db:migrate       migrate DATABASE_URL, else the SQLite file in DATA_DIR, and exit`;

/**
 * Runs the command `argv[2]` names and resolves true once it has run (it
 * sets process.exitCode), or resolves false when there is none: serve.
 * `--help` prints the usage; any other argument is refused with exit 2.
 */
export async function runCommand(argv: string[]): Promise<boolean> {
  const word = argv[2];
  if (word === undefined) return false;
  const command = COMMANDS.get(word);
  if (command) {
    argv.splice(2, 1);
    await command();
    return true;
  }
  const help = word === "--help" || word === "-h" || word === "help";
  (help ? process.stdout : process.stderr).write(`${help ? "" : `headcount: unknown command ${JSON.stringify(word)}\n`}${USAGE}\n`);
  process.exitCode = help ? 0 : 2;
  return true;
}
