// Node's entry for the data commands: `npm run db:copy -- --from … --to …`
// and `npm run db:migrate` run `node src/runtime/db-cli.ts <command> …`
// (commands.ts; the single binary runs the same commands itself).
import process from "node:process";
import { runProcessCommand, usage } from "./commands.ts";

if (!(await runProcessCommand("npm"))) {
  process.stderr.write(`${usage("npm")}\n`);
  process.exitCode = 2;
}
