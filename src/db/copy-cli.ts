import { parseArgs } from "node:util";
import type { CopySource, CopyTarget } from "./copy.ts";

// db:copy, the command: `npm run db:copy -- --from … --to …` and
// `headcount db:copy …` (src/runtime/commands.ts hands it the arguments).
// Returns the exit code: 0 copied, 1 refused or failed (message on stderr),
// 2 bad arguments.

/** Where a command writes; the runtime supplies the process's streams. */
export interface CommandOutput {
  stdout(text: string): void;
  stderr(text: string): void;
}

const usage = (invocation: string) => `usage: ${invocation} --from <data dir | postgres://…> --to <data dir | postgres://…> [--force]

  Copies counters (totals, updated_at), per-minute history, daily visits,
  visitors and bots, and settings (the resume secret) from one store to
  another; never the day's visitor hashes or salts. A data directory must not be in
  use by a running server.

  --force  copy into a target that already has counters: keys the source has
           are replaced by the source's, the target's other keys are kept`;

const isUrl = (s: string) => /^postgres(ql)?:\/\//i.test(s);

type Parsed = { from: string; to: string; force: boolean } | { help: true } | { problem: string };

function parse(args: string[]): Parsed {
  let values: { from?: string; to?: string; force?: boolean; help?: boolean };
  try {
    ({ values } = parseArgs({
      args,
      options: { from: { type: "string" }, to: { type: "string" }, force: { type: "boolean" }, help: { type: "boolean", short: "h" } },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    return { problem: (err as Error).message };
  }
  if (values.help) return { help: true };
  if (!values.from) return { problem: "--from is required" };
  if (!values.to) return { problem: "--to is required" };
  if (values.from === values.to) return { problem: "--from and --to are the same store" };
  return { from: values.from, to: values.to, force: values.force ?? false };
}

// Each store's code is loaded only when used (and not for a usage error).
async function openSource(spec: string): Promise<CopySource> {
  if (isUrl(spec)) return (await import("./copy-postgres.ts")).openPostgresCopyEndpoint(spec, "source");
  return (await import("./sqlite/copy.ts")).openSqliteCopyEndpoint(spec, "source");
}

async function openTarget(spec: string): Promise<CopyTarget> {
  if (isUrl(spec)) return (await import("./copy-postgres.ts")).openPostgresCopyEndpoint(spec, "target");
  return (await import("./sqlite/copy.ts")).openSqliteCopyEndpoint(spec, "target");
}

/** `invocation`: how the user typed the command, for the usage text. */
export async function copyCli(args: string[], out: CommandOutput, invocation: string): Promise<number> {
  const parsed = parse(args);
  if ("help" in parsed) {
    out.stdout(`${usage(invocation)}\n`);
    return 0;
  }
  if ("problem" in parsed) {
    out.stderr(`db:copy: ${parsed.problem}\n${usage(invocation)}\n`);
    return 2;
  }
  let source: CopySource | undefined;
  let target: CopyTarget | undefined;
  try {
    source = await openSource(parsed.from);
    target = await openTarget(parsed.to);
    const { copyStore } = await import("./copy.ts");
    const n = await copyStore(source, target, { force: parsed.force });
    out.stdout(`copied ${n.counters} counters, ${n.history} history rows, ${n.daily} daily rows, ${n.settings} settings from ${source.label} to ${target.label}\n`);
    return 0;
  } catch (err) {
    out.stderr(`db:copy: ${(err as Error).message}\n`);
    return 1;
  } finally {
    await target?.close().catch(() => {});
    await source?.close().catch(() => {});
  }
}
