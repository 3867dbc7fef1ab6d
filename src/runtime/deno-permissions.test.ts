import { describe, expect, it } from "vitest";
import { databaseHosts, denoPermissions } from "./deno-permissions.ts";

const ROOT = "/srv/headcount";

describe("denoPermissions", () => {
  it("embedded store: the listen address, the project's read-only dirs and the data dir", () => {
    expect(denoPermissions({}, ROOT)).toEqual({
      flags: [
        "--allow-net=127.0.0.1:8080",
        "--allow-read=/srv/headcount/public,/srv/headcount/node_modules," + process.cwd() + "/data",
        "--allow-env",
        "--allow-write=" + process.cwd() + "/data",
      ],
      ungrantable: [],
    });
  });

  it("PostgreSQL: the database host instead of any write access", () => {
    const { flags } = denoPermissions(
      { HOST: "0.0.0.0", PORT: "0", DATABASE_URL: "postgres://u:p@db.internal:6543/app", DATA_DIR: "/ignored" },
      ROOT,
    );
    expect(flags).toEqual([
      "--allow-net=0.0.0.0,db.internal:6543",
      "--allow-read=/srv/headcount/public,/srv/headcount/node_modules",
      "--allow-env",
    ]);
  });

  it("leaves out what cannot be granted and never prints an empty list", () => {
    const { flags, ungrantable } = denoPermissions({ DATA_DIR: "/var/lib/my data" }, ROOT);
    expect(ungrantable).toEqual(["/var/lib/my data"]);
    expect(flags.some((f) => f.startsWith("--allow-write"))).toBe(false);
  });
});

describe("databaseHosts", () => {
  it("reads every host of a multi-host URL, with default ports and IPv6 brackets", () => {
    expect(databaseHosts("postgres://u@h1,h2:5433,[::1]/db", {})).toEqual(["h1:5432", "h2:5433", "[::1]:5432"]);
  });

  it("falls back to PGHOST/PGPORT, and a unix socket needs no net permission", () => {
    expect(databaseHosts("postgresql:///db", { PGHOST: "pg", PGPORT: "7000" })).toEqual(["pg:7000"]);
    expect(databaseHosts("postgres://%2Fvar%2Frun%2Fpostgresql/db", {})).toEqual([]);
  });
});
