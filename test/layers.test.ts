import { execFile } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { ROOT } from "./helpers/server.ts";

// The one dependency rule (DESIGN.md §1), checked: core imports nothing but
// itself and valibot, and compiles with no runtime's ambient types; only
// src/runtime reads the environment or a runtime's own globals.

const run = promisify(execFile);

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? files(join(dir, e.name)) : e.name.endsWith(".ts") ? [join(dir, e.name)] : [],
  );
}

const source = (file: string) => readFileSync(file, "utf8");
/** The code without its comments (which may name runtime APIs freely). */
const code = (text: string) => text.replace(/\/\*[\s\S]*?\*\//g, "").replace(/(^|[^:"'`])\/\/.*$/gm, "$1");
const imports = (text: string) => [...text.matchAll(/^\s*(?:import|export)\b[^'"]*?from\s+["']([^"']+)["']|^\s*import\s+["']([^"']+)["']/gm)].map((m) => m[1] ?? m[2]!);

describe("the layer rule", () => {
  it("core imports only core and valibot", () => {
    const bad: string[] = [];
    for (const file of files(join(ROOT, "src/core")).filter((f) => !f.endsWith(".test.ts") && !f.endsWith("testing.ts"))) {
      for (const spec of imports(source(file))) {
        if (spec.startsWith("./") || spec === "valibot") continue;
        bad.push(`${relative(ROOT, file)} imports ${spec}`);
      }
    }
    expect(bad).toEqual([]);
  });

  it("no file in src/ passes 300 lines, and a runtime entry 80 (generated migrations and tests aside)", () => {
    const lines = (file: string) => source(file).split("\n").length - 1;
    const bad: string[] = [];
    for (const file of files(join(ROOT, "src")).filter((f) => !f.endsWith(".test.ts") && !f.endsWith(".gen.ts"))) {
      if (lines(file) > 300) bad.push(`${relative(ROOT, file)}: ${lines(file)} lines`);
    }
    for (const entry of ["node", "bun", "deno", "cloudflare"]) {
      const file = join(ROOT, "src/runtime", `${entry}.ts`);
      if (lines(file) > 80) bad.push(`${relative(ROOT, file)}: ${lines(file)} lines (an entry)`);
    }
    expect(bad).toEqual([]);
  });

  it("only src/runtime reads the environment or a runtime's globals", () => {
    const bad: string[] = [];
    for (const file of files(join(ROOT, "src")).filter((f) => !f.includes("/runtime/") && !f.endsWith(".test.ts"))) {
      const text = code(source(file));
      for (const pattern of [/process\.env/, /\bDeno\./, /\bBun\./, /\bWebSocketPair\b/, /from ["']bun["']/]) {
        if (pattern.test(text)) bad.push(`${relative(ROOT, file)} uses ${pattern.source}`);
      }
    }
    expect(bad).toEqual([]);
  });

  it("the core type-check fails on a runtime global (so it checks something)", async () => {
    const dir = mkdtempSync(join(ROOT, "src/core/layer-probe-"));
    try {
      writeFileSync(join(dir, "probe.ts"), 'export const leak = Buffer.from("x").length + process.pid;\n');
      const probe = await run(join(ROOT, "node_modules/.bin/tsc"), ["-p", "tsconfig.core.json"], { cwd: ROOT }).then(
        () => "compiled",
        (err: { stdout?: string }) => err.stdout ?? "",
      );
      expect(probe).toMatch(/Cannot find name 'Buffer'/);
      expect(probe).toMatch(/Cannot find name 'process'/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
