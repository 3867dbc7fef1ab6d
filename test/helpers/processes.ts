import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";

// Short-lived child processes of each runtime running a fixture script that
// reports on lines of its output (test/fixtures/).

export type ScriptRuntime = "node" | "bun" | "deno";

export interface Child {
  proc: ChildProcess;
  /** The next line the child prints (rejects if it exits first). */
  nextLine(): Promise<string>;
  exited: Promise<number | null>;
  send(line: string): void;
  /** Ends the child's stdin (a holding fixture then closes and exits). */
  release(): void;
}

const ROOT = decodeURIComponent(new URL("../..", import.meta.url).pathname).replace(/\/$/, "");
const BIN = `${ROOT}/node_modules/.bin`;

/**
 * `script` (relative to the project root) on `runtime` with `args`. Deno gets
 * read and write access to `grantDir` only, as `deno task start` grants the
 * data directory.
 */
export function runScript(runtime: ScriptRuntime, script: string, args: string[], grantDir: string): Child {
  const cmd =
    runtime === "deno"
      ? [`${BIN}/deno`, "run", `--allow-read=${grantDir}`, `--allow-write=${grantDir}`, script, ...args]
      : [`${BIN}/${runtime}`, script, ...args];
  const proc = spawn(cmd[0]!, cmd.slice(1), {
    cwd: ROOT,
    stdio: ["pipe", "pipe", "pipe"],
    env: { ...process.env, DENO_NO_UPDATE_CHECK: "1", NO_COLOR: "1" },
  });
  let stderr = "";
  proc.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => proc.on("exit", (code) => resolve(code)));
  const queued: string[] = [];
  const waiting: Array<{ resolve(line: string): void; reject(err: Error): void }> = [];
  createInterface({ input: proc.stdout! }).on("line", (line) => {
    const w = waiting.shift();
    if (w) w.resolve(line);
    else queued.push(line);
  });
  void exited.then((code) => {
    for (const w of waiting.splice(0)) w.reject(new Error(`${runtime} ${script} exited (${code}): ${stderr}`));
  });
  return {
    proc,
    exited,
    nextLine() {
      const line = queued.shift();
      if (line !== undefined) return Promise.resolve(line);
      if (proc.exitCode !== null) return Promise.reject(new Error(`${runtime} ${script} exited (${proc.exitCode}): ${stderr}`));
      return new Promise((resolve, reject) => waiting.push({ resolve, reject }));
    },
    send: (line) => void proc.stdin!.write(`${line}\n`),
    release: () => void proc.stdin!.end(),
  };
}
