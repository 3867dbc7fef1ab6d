/// <reference types="bun" />
// `npm run build`: dist/headcount, one executable holding Bun's runtime, the
// server (src/runtime/bun.ts and every module it imports, the bundled
// migrations with them) and public/. Where it runs it needs no Node, npm or
// node_modules. `npm run build -- --target=bun-linux-arm64` cross-compiles
// (Bun fetches that platform's runtime once) to dist/headcount-linux-arm64.
// https://bun.com/docs/bundler/executables
import { rmSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { parseArgs } from "node:util";

const ROOT = join(import.meta.dir, "..");
const { values } = parseArgs({ options: { target: { type: "string" } }, strict: true });
const target = values.target as Bun.Build.CompileTarget | undefined;
const outfile = join(ROOT, "dist", target ? `headcount-${target.replace(/^bun-/, "")}` : "headcount");

// `--asset` keeps an asset's path relative to the working directory: public/
// must land at <binary root>/public, where src/runtime/bun-static.ts looks.
process.chdir(ROOT);
await Bun.build({
  entrypoints: ["./src/runtime/bun.ts"],
  compile: { outfile, assets: ["./public"], ...(target && { target }) },
  // Identifiers are kept: logs and error messages name classes and functions.
  minify: { whitespace: true, syntax: true },
  // Stack traces in the logs point at src/: the map is inside the binary. Bun
  // also writes it beside the binary, where nothing reads it.
  sourcemap: "inline",
});
rmSync(`${outfile}.map`, { force: true });
console.log(`built ${relative(ROOT, outfile)} (${(statSync(outfile).size / 2 ** 20).toFixed(1)} MiB)`);
