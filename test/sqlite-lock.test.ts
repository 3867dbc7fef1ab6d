import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openSqliteFile } from "../src/db/sqlite/file.ts";
import { PID_FILE } from "../src/db/sqlite/file-lock.ts";
import { runScript, type Child, type ScriptRuntime } from "./helpers/processes.ts";

// One server per data directory: SQLite's own lock on the database file,
// taken and contended for by real processes of Node, Bun and Deno
// (test/fixtures/open-sqlite.ts opens a store on command).

const RUNTIMES: ScriptRuntime[] = ["node", "bun", "deno"];
const LOCKED = /^error DataDirLockedError: data directory (.+) is locked by another headcount process \(pid (\d+)\)/;
const OPENED = /^opened (\d+)$/;

const base = mkdtempSync(join(tmpdir(), "headcount-lock-"));
let n = 0;
function freshDir(): string {
  const dir = join(base, `d${n++}`);
  mkdirSync(dir);
  return dir;
}

const started: Child[] = [];
async function start(runtime: ScriptRuntime): Promise<Child> {
  const child = runScript(runtime, "test/fixtures/open-sqlite.ts", [], base);
  started.push(child);
  expect(await child.nextLine()).toBe("ready");
  return child;
}
async function ask(child: Child, command: string): Promise<string> {
  child.send(command);
  return child.nextLine();
}

const procs = {} as Record<ScriptRuntime, Child>;
beforeAll(async () => {
  for (const r of RUNTIMES) procs[r] = await start(r);
});
afterAll(async () => {
  for (const c of started) c.release();
  await Promise.all(started.map((c) => Promise.race([c.exited, new Promise((r) => setTimeout(r, 3000))])));
  for (const c of started) if (c.proc.exitCode === null) c.proc.kill("SIGKILL");
  rmSync(base, { recursive: true, force: true });
});

describe("one data directory, three runtimes", () => {
  it("Node, Bun and Deno take turns counting in the same file", async () => {
    const dir = freshDir();
    for (const [i, runtime] of RUNTIMES.entries()) {
      expect(await ask(procs[runtime], `open ${dir}`)).toMatch(OPENED);
      expect(await ask(procs[runtime], "count /shared")).toBe(`total ${i + 1}`);
      expect(await ask(procs[runtime], "close")).toBe("closed");
    }
  });
});

describe("the data directory lock", () => {
  it.each(RUNTIMES)("a store %s holds refuses the other runtimes, naming its pid, and is free once closed", async (holder) => {
    const dir = freshDir();
    const pid = OPENED.exec(await ask(procs[holder], `open ${dir}`))?.[1];
    expect(pid, `${holder} opened`).toBeDefined();
    const others = RUNTIMES.filter((r) => r !== holder);
    const lines = await Promise.all(others.map((other) => ask(procs[other], `open ${dir}`)));
    for (const [i, line] of lines.entries()) {
      expect(line, others[i]).toMatch(LOCKED);
      expect(LOCKED.exec(line)!.slice(1)).toEqual([dir, pid]);
    }
    expect(await ask(procs[holder], "close")).toBe("closed");
    expect(await ask(procs[others[0]!], `open ${dir}`)).toMatch(OPENED);
    expect(await ask(procs[others[0]!], "close")).toBe("closed");
  });

  it("a second open in the same process is refused without touching the file, and the lock still holds", async () => {
    const dir = freshDir();
    const store = await openSqliteFile(dir);
    try {
      await expect(openSqliteFile(dir)).rejects.toMatchObject({ name: "DataDirLockedError", pid: process.pid });
      const line = await ask(procs.node, `open ${dir}`);
      expect(LOCKED.exec(line)?.slice(1)).toEqual([dir, String(process.pid)]);
    } finally {
      await store.close();
    }
    expect(await ask(procs.node, `open ${dir}`)).toMatch(OPENED);
    expect(await ask(procs.node, "close")).toBe("closed");
  });

  it("dies with its process: after SIGKILL the next one opens at once", async () => {
    const dir = freshDir();
    const doomed = await start("node");
    expect(await ask(doomed, `open ${dir}`)).toMatch(OPENED);
    doomed.proc.kill("SIGKILL");
    await doomed.exited;
    expect(await ask(procs.bun, `open ${dir}`)).toMatch(OPENED);
    expect(await ask(procs.bun, "close")).toBe("closed");
  });

  it("two processes told to open a directory with a stale pid file in the same instant: exactly one does, ten times over", async () => {
    const second = await start("node");
    for (let round = 0; round < 10; round++) {
      const dir = freshDir();
      // A pid file a crashed server left a while ago.
      writeFileSync(join(dir, PID_FILE), "999999\n");
      utimesSync(join(dir, PID_FILE), new Date(Date.now() - 60_000), new Date(Date.now() - 60_000));
      const racers = [procs.node, round % 2 === 0 ? second : procs.bun];
      for (const r of racers) r.send(`open ${dir}`);
      const lines = await Promise.all(racers.map((r) => r.nextLine()));
      const winners = lines.filter((l) => OPENED.test(l));
      const losers = lines.filter((l) => LOCKED.test(l));
      expect(winners, `round ${round}: ${lines.join(" | ")}`).toHaveLength(1);
      expect(losers, `round ${round}: ${lines.join(" | ")}`).toHaveLength(1);
      expect(LOCKED.exec(losers[0]!)![2], `round ${round}: the loser names the winner`).toBe(OPENED.exec(winners[0]!)![1]);
      const winner = racers[lines.findIndex((l) => OPENED.test(l))]!;
      expect(await ask(winner, "close")).toBe("closed");
    }
  });
});
