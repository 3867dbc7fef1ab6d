import { mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openPglite } from "../src/db/pglite.ts";

// Creating a PGlite cluster (initdb + migrations) costs about two seconds of
// CPU; the suites start dozens of embedded servers. Build one migrated
// cluster per run and let freshDataDir() copy it (test/helpers/server.ts).

export async function setup(): Promise<() => void> {
  const template = join(tmpdir(), `headcount-template-${process.pid}`);
  rmSync(template, { recursive: true, force: true });
  mkdirSync(template, { recursive: true });
  const store = await openPglite(join(template, "pgdata"));
  await store.close();
  process.env.HEADCOUNT_TEST_TEMPLATE = template;
  return () => rmSync(template, { recursive: true, force: true });
}
