import process from "node:process";
import { parseArgs } from "node:util";
import type { CopySource, CopyTarget } from "./copy.ts";

// `npm run db:copy -- --from <data dir | postgres URL> --to <data dir | postgres URL> [--force]`
// Exit codes: 0 copied, 1 refused or failed (message on stderr), 2 bad arguments.

const USAGE = `usage: npm run db:copy -- --from <data dir | postgres://…> --to <data dir | postgres://…> [--force]

  Copies counters (totals, updated_at), per-minute history and settings (the
  resume secret) from one store to another. A data directory must not be in
  use by a running server.

  --force  copy into a target that already has counters: keys the source has
           are replaced by the source's, the target's other keys are kept`;

const isUrl = (s: string) => /^postgres(ql)?:\/\//i.test(s);

function usage(problem: string): never {
  process.stderr.write(`db:copy: ${problem}\n${USAGE}\n`);
  process.exit(2);
}

function parse(argv: string[]): { from: string; to: string; force: boolean } {
  let values: { from?: string; to?: string; force?: boolean; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: argv,
      options: { from: { type: "string" }, to: { type: "string" }, force: { type: "boolean" }, help: { type: "boolean", short: "h" } },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    usage((err as Error).message);
  }
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  if (!values.from) usage("--from is required");
  if (!values.to) usage("--to is required");
  if (values.from === values.to) usage("--from and --to are the same store");
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

async function main(): Promise<number> {
  const args = parse(process.argv.slice(2));
  let source: CopySource | undefined;
  let target: CopyTarget | undefined;
  try {
    source = await openSource(args.from);
    target = await openTarget(args.to);
    const { copyStore } = await import("./copy.ts");
    const n = await copyStore(source, target, { force: args.force });
    process.stdout.write(`copied ${n.counters} counters, ${n.history} history rows, ${n.settings} settings from ${source.label} to ${target.label}\n`);
    return 0;
  } catch (err) {
    process.stderr.write(`db:copy: ${(err as Error).message}\n`);
    return 1;
  } finally {
    await target?.close().catch(() => {});
    await source?.close().catch(() => {});
  }
}

process.exitCode = await main();
