import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { BIN, ROOT } from "./helpers/launch.ts";

// src/runtime/node-preload.mjs serves the project's .ts files from a cache of
// their stripped text, so a start never loads Node's type stripper. A stale
// entry must never be served: the cache is keyed by the source's hash.

const run = promisify(execFile);
const file = join(ROOT, "test", "fixtures", `strip-cache-${process.pid}.ts`);
const cached = join(ROOT, "node_modules", ".cache", "headcount-ts", `${createHash("sha1").update(file).digest("hex")}.js`);

async function runWithPreload(): Promise<{ stdout: string; stderr: string }> {
  return run(join(BIN, "node"), ["--import", "./src/runtime/node-preload.mjs", file], { cwd: ROOT });
}

afterAll(() => {
  rmSync(file, { force: true });
  rmSync(cached, { force: true });
});

describe("node-preload's strip cache", () => {
  it("strips a .ts file once, serves it from the cache, and strips it again when it changes", async () => {
    writeFileSync(file, 'const answer: number = 41;\nconsole.log(`answer ${answer}`);\n');
    const first = await runWithPreload();
    expect(first.stdout.trim()).toBe("answer 41");
    // The experimental-API warning is held back: the server's stderr is JSON lines.
    expect(first.stderr).toBe("");
    expect(readFileSync(cached, "utf8")).toContain("const answer         = 41;");

    // A cache entry with the right stamp is what runs (proof that it is read).
    const stamp = readFileSync(cached, "utf8").split("\n")[0]!;
    writeFileSync(cached, `${stamp}\nconsole.log("from the cache");\n`);
    expect((await runWithPreload()).stdout.trim()).toBe("from the cache");

    // A changed source is a miss: stripped again, whatever the old entry said.
    writeFileSync(file, 'const answer: number = 42;\nconsole.log(`answer ${answer}`);\n');
    expect((await runWithPreload()).stdout.trim()).toBe("answer 42");
    expect(readFileSync(cached, "utf8")).toContain("= 42;");
  });
});
