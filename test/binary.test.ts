import { execFile } from "node:child_process";
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { behaviourSuite } from "./behaviour.ts";
import { BIN, headcountCommand, inheritedEnv, ROOT, runToExit } from "./helpers/launch.ts";
import { freshDataDir, startServer } from "./helpers/server.ts";
import { TestSocket } from "./helpers/ws.ts";
import { uniqueKey } from "./helpers/env.ts";

// The single executable (README "One binary"): `npm run build` once, then
// dist/headcount alone in an empty directory, run with no Node, npm or Bun
// on PATH (test/helpers/launch.ts binaryCommand), is the server under the
// behaviour suite on both stores, serves public/ from inside itself, and
// runs the data commands.

const run = promisify(execFile);
const buildable = existsSync(join(BIN, "bun"));

async function build(): Promise<string> {
  const started = performance.now();
  // npm from PATH runs the script as a user would; it finds bun in node_modules/.bin.
  await run("npm", ["run", "--silent", "build"], { cwd: ROOT, env: inheritedEnv(), timeout: 300_000 });
  const dir = mkdtempSync(join(tmpdir(), "headcount-binary-"));
  const binary = join(dir, "headcount");
  copyFileSync(join(ROOT, "dist", "headcount"), binary);
  console.log(`npm run build: ${Math.round(performance.now() - started)} ms`);
  return binary;
}

const binary = buildable ? await build() : undefined;
if (binary) process.env.HEADCOUNT_BINARY = binary; // every server below runs it (launch.ts binaryCommand)
afterAll(() => {
  if (binary) rmSync(join(binary, ".."), { recursive: true, force: true });
});

if (binary) {
  behaviourSuite({ runtime: "binary", store: "embedded", dataDirLock: true });
  behaviourSuite({ runtime: "binary", store: "postgres", dataDirLock: true });
}

/** Runs the binary as the server runs (its directory, a PATH with nothing on it) with extra arguments. */
function command(args: string[], env: Record<string, string> = {}) {
  const base = headcountCommand("binary", { ...inheritedEnv(), ...env });
  return runToExit({ ...base, args }, {});
}

describe.skipIf(!binary)("the binary alone", () => {
  it("serves every file of public/ from inside itself, with its type; HEAD; no way out of it", async () => {
    const server = await startServer({ runtime: "binary" });
    try {
      // Nothing from the source tree is mapped or open: the page comes from the executable.
      const pid = String(server.pid);
      const maps = readFileSync(`/proc/${pid}/maps`, "utf8");
      const fds = readdirSync(`/proc/${pid}/fd`).map((fd) => {
        try {
          return readlinkSync(`/proc/${pid}/fd/${fd}`);
        } catch {
          return "";
        }
      });
      for (const where of [maps, ...fds]) {
        expect(where).not.toContain(ROOT);
        expect(where).not.toContain("node_modules");
      }

      const types: Record<string, RegExp> = { html: /^text\/html/, js: /^text\/javascript/, css: /^text\/css/ };
      // public/_headers is Workers assets' header rules (routes/security-headers.ts sends them here): not a page.
      expect((await fetch(`${server.url}/_headers`)).status).toBe(404);
      for (const name of readdirSync(join(ROOT, "public")).filter((n) => n !== "_headers")) {
        const res = await fetch(`${server.url}/${name}`);
        expect(res.status, name).toBe(200);
        const type = types[name.slice(name.lastIndexOf(".") + 1)];
        expect(type, `an expected type for ${name}`).toBeDefined();
        expect(res.headers.get("content-type"), name).toMatch(type!);
        expect(Buffer.from(await res.arrayBuffer()).equals(readFileSync(join(ROOT, "public", name))), name).toBe(true);
      }
      const root = await fetch(`${server.url}/`);
      expect(await root.text()).toBe(readFileSync(join(ROOT, "public", "index.html"), "utf8"));
      const head = await fetch(`${server.url}/style.css`, { method: "HEAD" });
      expect(head.status).toBe(200);
      expect(head.headers.get("content-length")).toBe(String(readFileSync(join(ROOT, "public", "style.css")).length));

      for (const path of ["/missing.css", "/%2e%2e/%2e%2e/etc/passwd", "/..%2f..%2fetc%2fpasswd", "/public/index.html", "//index.html"]) {
        const res = await fetch(`${server.url}${path}`);
        expect(res.status, path).toBe(404);
        expect(await res.json(), path).toMatchObject({ error: "not_found" });
      }
    } finally {
      expect(await server.stop()).toBe(0);
    }
  });

  it("db:migrate and db:copy run from it; a copy serves the same totals", async () => {
    const dataDir = freshDataDir();
    const migrated = await command(["db:migrate"], { DATA_DIR: dataDir });
    expect(migrated, migrated.output).toMatchObject({ code: 0 });
    expect(migrated.output).toContain(`migrated ${join(dataDir, "headcount.db")}`);

    const key = uniqueKey("binary-copy");
    const source = await startServer({ runtime: "binary", dataDir });
    for (let i = 0; i < 3; i++) await (await TestSocket.join(source.wsUrl(key))).sock.close();
    expect(await source.stop()).toBe(0);

    const target = join(freshDataDir(), "copy");
    const copied = await command(["db:copy", "--from", dataDir, "--to", target]);
    expect(copied, copied.output).toMatchObject({ code: 0 });
    expect(copied.output).toMatch(/copied 1 counters/);
    const server = await startServer({ runtime: "binary", dataDir: target });
    try {
      const res = await fetch(`${server.url}/api/counters/${encodeURIComponent(key)}`);
      expect(await res.json()).toMatchObject({ total: 3 });
    } finally {
      await server.stop();
    }

    expect(await command(["db:copy", "--from", dataDir])).toMatchObject({ code: 2, output: expect.stringMatching(/--to is required\nusage: headcount db:copy --from/) });
    expect(await command(["serve-please"])).toMatchObject({ code: 2, output: expect.stringMatching(/unknown command "serve-please"[^]*usage: headcount/) });
  });
});
