import { closeSync, openSync, rmSync, writeSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { uniqueKey } from "./helpers/env.ts";
import { canMount, mountTmpfs, type Tmpfs } from "./helpers/mounts.ts";
import { freshDataDir, startServer, type RunningServer, type RuntimeName } from "./helpers/server.ts";
import { TestSocket } from "./helpers/ws.ts";

// The embedded store as a running server sees it, on Node, Bun and Deno: the
// durability settings SQLite reports for the server's own connection (read
// from /metrics: no second process can open the file while the server holds
// its lock), and a disk that fills up under a running server: visits are
// refused with 1013 as in a database outage, /readyz says why, nothing
// acknowledged is lost, and counting resumes when space returns.

const servers: RunningServer[] = [];
const mounts: Tmpfs[] = [];
afterAll(async () => {
  await Promise.all(servers.map((s) => s.stop()));
  for (const m of mounts) m.unmount();
});

async function metric(s: RunningServer, name: string): Promise<string> {
  const text = await (await fetch(`${s.url}/metrics`)).text();
  return text.split("\n").find((l) => l.startsWith(name)) ?? "";
}

function fill(path: string): void {
  const fd = openSync(path, "w");
  const chunk = Buffer.alloc(64 * 1024, 1);
  try {
    for (;;) writeSync(fd, chunk);
  } catch (err) {
    if ((err as { code?: string }).code !== "ENOSPC") throw err;
  } finally {
    closeSync(fd);
  }
}

for (const runtime of ["node", "bun", "deno"] as RuntimeName[]) {
  describe(`embedded SQLite on ${runtime}`, () => {
    it("runs with journal_mode=wal, synchronous=full and the exclusive lock, as SQLite reports them", async () => {
      const dir = freshDataDir();
      const s = await startServer({ runtime, dataDir: dir });
      servers.push(s);
      expect(await metric(s, "headcount_sqlite_info")).toMatch(/journal_mode="wal",synchronous="full",locking_mode="exclusive"\} 1/);
      await s.stop();
      rmSync(dir, { recursive: true, force: true });
    });

    it.skipIf(!canMount)("a full disk refuses visits with 1013, /readyz says why, and counting resumes with nothing acknowledged lost", async () => {
      const fs = mountTmpfs("3m");
      mounts.push(fs);
      const s = await startServer({ runtime, dataDir: fs.dir, env: { COMMIT_TIMEOUT_MS: "1500" } });
      servers.push(s);
      const key = uniqueKey("disk");
      let acked = 0;
      const first = await TestSocket.join(s.wsUrl(key));
      acked++;
      await first.sock.close();

      fill(join(fs.dir, "filler"));
      // Pages the WAL already has are reused: write until a commit really needs new space.
      let refused: { code: number; reason: string } | null = null;
      for (let i = 0; i < 50 && !refused; i++) {
        const sock = await TestSocket.open(s.wsUrl(`${key}/${"x".repeat(200)}/${i}`));
        const outcome = await Promise.race([sock.hello(5000).then(() => null), sock.closed]);
        if (outcome && "code" in outcome) refused = outcome;
        else acked++;
        await sock.close();
      }
      expect(refused).toMatchObject({ code: 1013, reason: "visit not recorded: database unavailable" });
      await expect.poll(async () => (await (await fetch(`${s.url}/readyz`)).json()) as { reason?: string }).toMatchObject({
        reason: expect.stringMatching(/disk full/),
      });

      rmSync(join(fs.dir, "filler"));
      await expect.poll(async () => (await fetch(`${s.url}/readyz`)).status, { timeout: 10_000 }).toBe(200);
      const after = await TestSocket.join(s.wsUrl(key));
      expect(after.hello.total).toBe(2);
      await after.sock.close();
      expect(await s.stop()).toBe(0);
      // Every acknowledged visit is in the file: the key's own two, and the long keys that got a hello.
      const again = await startServer({ runtime, dataDir: fs.dir });
      servers.push(again);
      const res = (await (await fetch(`${again.url}/api/site?prefix=${encodeURIComponent(key)}`)).json()) as { total: number };
      expect(res.total).toBe(acked + 1);
    });
  });
}
