import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

// Small real file systems for the SQLite fault tests: a tmpfs of a given size
// (to fill), mounted read-only or not, and immutable files. They need root
// (the test machine runs as root); suites skip with a reason otherwise.

function run(cmd: string, args: string[]): void {
  execFileSync(cmd, args, { stdio: "pipe" });
}

/** Whether this process may mount a tmpfs (root with CAP_SYS_ADMIN). */
export const canMount: boolean = (() => {
  if (process.getuid?.() !== 0) return false;
  const dir = mkdtempSync(join(tmpdir(), "headcount-mount-probe-"));
  try {
    run("mount", ["-t", "tmpfs", "-o", "size=64k", "tmpfs", dir]);
    run("umount", [dir]);
    return true;
  } catch {
    return false;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
})();

export interface Tmpfs {
  dir: string;
  remount(options: "ro" | "rw"): void;
  unmount(): void;
}

/** A fresh tmpfs of `size` (e.g. "2m") on a new directory. */
export function mountTmpfs(size: string, readOnly = false): Tmpfs {
  const dir = mkdtempSync(join(tmpdir(), "headcount-tmpfs-"));
  run("mount", ["-t", "tmpfs", "-o", `size=${size}${readOnly ? ",ro" : ""}`, "tmpfs", dir]);
  let mounted = true;
  return {
    dir,
    remount: (options) => run("mount", ["-o", `remount,${options}`, dir]),
    unmount() {
      if (!mounted) return;
      mounted = false;
      run("umount", ["-l", dir]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Sets or clears the immutable attribute: writes fail even through descriptors already open, as on a file system gone read-only. */
export function immutable(paths: string[], on: boolean): void {
  run("chattr", [on ? "+i" : "-i", ...paths]);
}

/** Whether `dir`'s file system supports the immutable attribute. */
export function canChattr(dir: string): boolean {
  if (process.getuid?.() !== 0) return false;
  const probe = join(dir, ".chattr-probe");
  mkdirSync(probe, { recursive: true });
  try {
    immutable([probe], true);
    immutable([probe], false);
    return true;
  } catch {
    return false;
  } finally {
    rmSync(probe, { recursive: true, force: true });
  }
}

/** Every entry under `dir` with its type, mode, size and content hash: equal snapshots mean nothing changed. */
export function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (rel: string) => {
    for (const name of readdirSync(join(dir, rel)).sort()) {
      const path = join(dir, rel, name);
      const st = statSync(path);
      if (st.isDirectory()) {
        out[join(rel, name) + "/"] = `dir ${st.mode}`;
        walk(join(rel, name));
      } else {
        out[join(rel, name)] = `file ${st.mode} ${st.size} ${createHash("sha256").update(readFileSync(path)).digest("hex")}`;
      }
    }
  };
  walk("");
  return out;
}
