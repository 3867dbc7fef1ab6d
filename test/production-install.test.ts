import { execFile } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { IN_CI, postgresAvailable, TEST_DATABASE_URL, uniqueKey } from "./helpers/env.ts";
import { BIN, launch, ROOT, type Launched } from "./helpers/launch.ts";
import { LIFTED_LIMITS } from "./helpers/server.ts";
import { TestSocket } from "./helpers/ws.ts";

// A production install, as README "Production install" tells an operator to
// do it: the tracked files of a checkout, `npm ci --omit=dev`, `npm start`,
// with the npm on PATH and a Node that package.json's `engines` names first
// on PATH (the project's pinned Node; PRODUCTION_NODE=/path/to/node checks
// another, e.g. the oldest that `engines` allows). Nothing from the dev
// tree may come along: no runtime, browser, test tool or compiler.
// Needs the npm registry (CI has it); elsewhere, without it, it is skipped.

const run = promisify(execFile);
const NODE = process.env.PRODUCTION_NODE ?? realpathSync(join(BIN, "node"));

interface Lockfile {
  packages: Record<string, { dev?: boolean; optional?: boolean; devOptional?: boolean }>;
}
interface Manifest {
  dependencies: Record<string, string>;
}
const manifest = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as Manifest;
const lockfile = JSON.parse(readFileSync(join(ROOT, "package-lock.json"), "utf8")) as Lockfile;

/** The lockfile's production tree: neither dev nor optional. */
const PROD = Object.entries(lockfile.packages)
  .filter(([key, p]) => key !== "" && !p.dev && !p.optional && !p.devOptional)
  .map(([key]) => key.replace(/^node_modules\//, ""));

/** Runtimes, browser drivers, test and build tools of the dev tree: a server must never get them. */
const NEVER = ["bun", "deno", "node", "wrangler", "workerd", "miniflare", "playwright-core", "vitest", "vite", "esbuild", "drizzle-kit", "tsx"];

/** Every package directory under node_modules, nested ones included, as lockfile keys name them (without the prefix). */
function installed(dir: string, prefix = ""): string[] {
  const nm = join(dir, "node_modules");
  if (!existsSync(nm)) return [];
  return readdirSync(nm, { withFileTypes: true })
    .filter((e) => e.isDirectory() && !e.name.startsWith("."))
    .flatMap((e) => (e.name.startsWith("@") ? readdirSync(join(nm, e.name)).map((n) => `${e.name}/${n}`) : [e.name]))
    .flatMap((name) => [prefix + name, ...installed(join(nm, name), `${prefix}${name}/node_modules/`)]);
}

async function registryReachable(env: Record<string, string>): Promise<boolean> {
  try {
    await run("npm", ["ping"], { env, timeout: 20_000 });
    return true;
  } catch (err) {
    if (IN_CI) throw new Error(`CI=true but the npm registry is unreachable: ${(err as Error).message}`);
    console.warn(`production install skipped: npm ping failed (${(err as Error).message.split("\n")[0]})`);
    return false;
  }
}

// The operator's environment: theirs, but nothing npm or Node set for this test run
// (npm_config_local_prefix would point the inner npm at this checkout).
const bin = mkdtempSync(join(tmpdir(), "headcount-prod-bin-"));
symlinkSync(NODE, join(bin, "node"));
const env: Record<string, string> = {
  ...Object.fromEntries(Object.entries(process.env).filter((e): e is [string, string] => e[1] !== undefined && !/^(npm_|VITEST|NODE_OPTIONS$|NODE_ENV$|INIT_CWD$)/i.test(e[0]))),
  PATH: `${bin}:/usr/bin:/bin`,
};
const online = await registryReachable(env);

describe.skipIf(!online)(`npm ci --omit=dev && npm start, on the Node at ${NODE}`, () => {
  const app = mkdtempSync(join(tmpdir(), "headcount-prod-"));
  const dataDir = mkdtempSync(join(tmpdir(), "headcount-prod-data-"));
  const ci = (...flags: string[]) => run("npm", ["ci", "--no-audit", "--no-fund", ...flags], { cwd: app, env, timeout: 240_000 });
  const sizeMiB = async () => Math.round(Number((await run("du", ["-sk", join(app, "node_modules")])).stdout.split("\t")[0]) / 1024);
  /** `npm ci --omit=dev`: its output and what it installed; then `--omit=optional` too, which stays for the servers. */
  const plain = { output: "", packages: [] as string[] };
  let minimal: string[] = [];

  beforeAll(async () => {
    const { stdout } = await run("git", ["ls-files", "-z"], { cwd: ROOT });
    for (const file of stdout.split("\0").filter(Boolean)) {
      if (!existsSync(join(ROOT, file))) continue; // deleted in this checkout, not yet committed
      mkdirSync(dirname(join(app, file)), { recursive: true });
      cpSync(join(ROOT, file), join(app, file));
    }
    expect((await run("node", ["--version"], { env })).stdout.trim()).toBe((await run(NODE, ["--version"])).stdout.trim());

    const out = await ci("--omit=dev");
    plain.output = out.stdout + out.stderr;
    plain.packages = installed(app);
    const plainMiB = await sizeMiB();
    await ci("--omit=dev", "--omit=optional");
    minimal = installed(app);
    console.log(`production node_modules: ${plainMiB} MiB with --omit=dev, ${await sizeMiB()} MiB with --omit=dev --omit=optional`);
  });
  afterAll(() => {
    for (const dir of [app, dataDir, bin]) rmSync(dir, { recursive: true, force: true });
  });

  it("--omit=dev brings no runtime, browser or test tool, and npm has nothing to warn about", () => {
    expect(plain.output).not.toMatch(/EBADENGINE|install-scripts/);
    for (const name of NEVER) expect(plain.packages).not.toContain(name);
    // Besides the server's own, npm keeps what a dependency names as an optional peer and we
    // also have as a dev dependency (the lockfile's devOptional: typescript, which valibot
    // names, and the type packages drizzle-orm names); `--omit=optional` leaves those out too.
    for (const name of plain.packages.filter((n) => !PROD.includes(n))) {
      expect(lockfile.packages[`node_modules/${name}`]?.devOptional, `${name} is only an optional peer`).toBe(true);
    }
  });

  it("--omit=dev --omit=optional installs only the dependencies, each one something the server imports", () => {
    expect(minimal.sort()).toEqual([...PROD].sort());
    expect(minimal).not.toContain("typescript");
    expect(Object.keys(manifest.dependencies).sort()).toEqual(
      ["@hono/node-server", "@hono/valibot-validator", "drizzle-orm", "hono", "isbot", "postgres", "undici", "valibot", "ws"].sort(),
    );
  });

  async function startNpm(extra: Record<string, string>): Promise<Launched> {
    return launch({
      name: "npm start",
      command: { cmd: "npm", args: ["start"], cwd: app },
      env: { ...env, PORT: "0", HOST: "127.0.0.1", DATA_DIR: dataDir, ...extra },
      timeoutMs: 60_000,
    });
  }

  async function visit(server: Launched): Promise<void> {
    const ready = await fetch(`${server.url}/readyz`);
    expect(await ready.json()).toEqual({ status: "ready" });
    const page = await fetch(`${server.url}/`);
    expect(page.headers.get("content-type")).toMatch(/text\/html/);
    expect(await page.text()).toMatch(/headcount/i);
    const key = uniqueKey("prod");
    const { sock, hello } = await TestSocket.join(server.wsUrl(key));
    expect(hello).toMatchObject({ key, total: 1, visitor: 1, online: 1 });
    await sock.close();
    // npm passes SIGTERM to its child, which `exec` in the start script made the server itself
    // (a shell in between would die and leave the server running), and exits with its code.
    expect(await server.stop("SIGTERM", 30_000)).toEqual({ code: 0, signal: null });
  }

  it("npm start serves the page and a real visit on the embedded store, and stops on SIGTERM", async () => {
    const server = await startNpm({});
    expect(server.listening).toMatchObject({ runtime: "node", store: "sqlite" });
    await visit(server);
  });

  it("and on PostgreSQL", async () => {
    if (!(await postgresAvailable())) return;
    // The shared test database holds every run's keys: past the default MAX_KEYS a new key would be refused.
    const server = await startNpm({ DATABASE_URL: TEST_DATABASE_URL, MAX_KEYS: LIFTED_LIMITS.MAX_KEYS! });
    expect(server.listening).toMatchObject({ store: "postgres" });
    await visit(server);
  });
});
