import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ROOT } from "./helpers/server.ts";

// The Workers build cannot read drizzle/ at run time: src/db/hyperdrive.ts
// imports each migration's SQL as text. This keeps that list in step with
// drizzle-kit's journal, so a new migration cannot ship to Node and not to Workers.

interface Journal {
  entries: { tag: string }[];
}

describe("migrations bundled into the Workers build", () => {
  it("src/db/hyperdrive.ts imports every migration in drizzle/", () => {
    const journal = JSON.parse(readFileSync(join(ROOT, "drizzle/meta/_journal.json"), "utf8")) as Journal;
    const source = readFileSync(join(ROOT, "src/db/hyperdrive.ts"), "utf8");
    for (const { tag } of journal.entries) {
      expect(source, tag).toContain(`"../../drizzle/${tag}.sql"`);
      expect(source, tag).toMatch(new RegExp(`"${tag}":\\s*\\w+`));
    }
  });
});
