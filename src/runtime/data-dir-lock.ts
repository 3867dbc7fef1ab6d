import { closeSync, mkdirSync, openSync, readFileSync, unlinkSync, writeSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";

// PGlite takes no lock on its directory, and two processes writing one
// directory corrupt it (electric-sql/pglite#1106). We hold a pid file the way
// postmaster.pid works: a live owner refuses us, a dead one is taken over.

export class DataDirLockedError extends Error {
  constructor(dir: string, pid: number, lockFile?: string) {
    super(
      `data directory ${dir} is locked by another headcount process (pid ${pid}); ` +
        (lockFile === undefined
          ? `stop that process or set DATA_DIR to another directory`
          : `this process may not check whether it is alive: if it is not running, delete ${lockFile}`),
    );
    this.name = "DataDirLockedError";
  }
}

/** Whether `pid` runs; undefined when we may not ask. */
function alive(pid: number): boolean | undefined {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === "ESRCH") return false;
    if (code === "EPERM") return true;
    // Deno without --allow-run throws NotCapable (no code) for any pid. Not
    // knowing must never mean "dead": that would let a second writer in.
    return undefined;
  }
}

/** Takes the lock or throws DataDirLockedError; returns the release function. */
export function lockDataDir(dir: string): () => void {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, "headcount.lock");
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, "wx");
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      let released = false;
      const release = () => {
        if (released) return;
        released = true;
        process.off("exit", release);
        try {
          if (Number(readFileSync(path, "utf8").trim()) === process.pid) unlinkSync(path);
        } catch {
          // already gone
        }
      };
      // A hard exit (second signal) leaves no stale lock behind: where the
      // owner's liveness cannot be checked (see alive), it would block the
      // next start until deleted by hand.
      process.once("exit", release);
      return release;
    } catch (err) {
      if ((err as { code?: string }).code !== "EEXIST") throw err;
      const owner = Number(readFileSync(path, "utf8").trim());
      if (Number.isInteger(owner) && owner > 0 && owner !== process.pid) {
        const live = alive(owner);
        if (live !== false) throw new DataDirLockedError(dir, owner, live ? undefined : path);
      }
      unlinkSync(path); // stale: its process is gone
    }
  }
  throw new Error(`could not lock data directory ${dir}`);
}
