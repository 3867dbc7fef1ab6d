// A cgroup v1 memory limit around one server, for the footprint scenario's
// "does it start and serve inside a small container" check. Needs root and the
// v1 memory controller at /sys/fs/cgroup/memory; without them the scenario
// says so and measures the rest.
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { sleep } from "./lib.ts";

const MOUNT = "/sys/fs/cgroup/memory";

export interface CgroupReading {
  /** memory.max_usage_in_bytes: the cgroup's peak charge (anonymous memory, page cache, kernel memory). */
  maxUsageBytes: number;
  usageBytes: number;
  /** memory.failcnt: how often a charge hit the limit (reclaim ran; not in itself an OOM). */
  failcnt: number;
  /** memory.oom_control: oom_kill (processes the OOM killer killed in this cgroup) and under_oom. */
  oomKill: number;
  underOom: boolean;
}

export interface Cgroup {
  dir: string;
  limitBytes: number;
  /** Whether memory.swappiness could be set to 0. */
  swappinessSet: boolean;
  read(): CgroupReading;
  /** Kills whatever is still inside (SIGKILL), then removes the cgroup. */
  remove(): Promise<void>;
}

/** Why a memory cgroup cannot be made here, or undefined when it can. */
export function cgroupUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return "not root: cannot create a memory cgroup";
  if (!existsSync(join(MOUNT, "memory.limit_in_bytes"))) return `no cgroup v1 memory controller at ${MOUNT}`;
  return undefined;
}

const made = new Set<Cgroup>();
let seq = 0;

export function createCgroup(limitMb: number): Cgroup {
  const dir = join(MOUNT, `headcount-bench-${process.pid}-${seq++}`);
  mkdirSync(dir);
  const limitBytes = Math.round(limitMb * 1024 * 1024);
  const cg: Cgroup = {
    dir,
    limitBytes,
    swappinessSet: false,
    read: () => {
      const num = (f: string) => Number(readFileSync(join(dir, f), "utf8").trim());
      const oom = readFileSync(join(dir, "memory.oom_control"), "utf8");
      const field = (name: string) => Number(new RegExp(`^${name} (\\d+)`, "m").exec(oom)?.[1] ?? NaN);
      return {
        maxUsageBytes: num("memory.max_usage_in_bytes"),
        usageBytes: num("memory.usage_in_bytes"),
        failcnt: num("memory.failcnt"),
        oomKill: field("oom_kill"),
        underOom: field("under_oom") === 1,
      };
    },
    remove: async () => {
      for (let i = 0; i < 50; i++) {
        const pids = readFileSync(join(dir, "cgroup.procs"), "utf8").split("\n").filter(Boolean).map(Number);
        if (pids.length === 0) break;
        for (const pid of pids) {
          try {
            process.kill(pid, "SIGKILL");
          } catch {
            /* already gone */
          }
        }
        await sleep(100);
      }
      for (let i = 0; i < 20; i++) {
        try {
          rmdirSync(dir);
          made.delete(cg);
          return;
        } catch (err) {
          if ((err as { code?: string }).code === "ENOENT") return void made.delete(cg);
          await sleep(100);
        }
      }
      process.stderr.write(`\nbench: could not remove ${dir}; remove it with: rmdir ${dir}\n`);
    },
  };
  made.add(cg);
  try {
    writeFileSync(join(dir, "memory.limit_in_bytes"), String(limitBytes));
  } catch (err) {
    void cg.remove();
    throw err;
  }
  try {
    writeFileSync(join(dir, "memory.swappiness"), "0");
    cg.swappinessSet = true;
  } catch {
    /* not writable here (e.g. under a parent with use_hierarchy): the limit still holds */
  }
  return cg;
}

/** Removes every cgroup this process made (on the way out, after an abort too). */
export async function removeAllCgroups(): Promise<void> {
  await Promise.all([...made].map((cg) => cg.remove()));
}
