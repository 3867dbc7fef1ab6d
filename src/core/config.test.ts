import { describe, expect, it } from "vitest";
import { parseConfig, type Env } from "./config.ts";
import { ConfigError } from "./errors.ts";

function configError(env: Env): ConfigError {
  try {
    parseConfig(env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error(`parseConfig accepted ${JSON.stringify(env)}`);
}

describe("parseConfig", () => {
  it("has documented defaults", () => {
    // toMatchObject: settings added later get their own assertions.
    expect(parseConfig({})).toMatchObject({
      port: 8080,
      host: "127.0.0.1",
      dataDir: "./data",
      databaseUrl: undefined,
      pg: { poolMax: 10, idleTimeoutS: 30, maxLifetimeS: 1800, connectTimeoutS: 10 },
      broadcastIntervalMs: 25,
      commitTimeoutMs: 30_000,
      resumeTtlS: 3600,
      resumeSecret: undefined,
      shutdownTimeoutMs: 10_000,
      logLevel: "info",
      presenceTtlMs: 15_000,
      workers: 1,
    });
    expect(parseConfig({}).databaseUrl).toBeUndefined();
    expect(parseConfig({}).resumeSecret).toBeUndefined();
  });

  it("treats empty and blank values as unset", () => {
    expect(parseConfig({ PORT: "", HOST: "  ", DATABASE_URL: " ", LOG_LEVEL: "", RESUME_SECRET: "" })).toEqual(parseConfig({}));
  });

  it("reads every variable", () => {
    const c = parseConfig({
      PORT: " 9000 ",
      HOST: " 0.0.0.0 ",
      DATA_DIR: "/var/lib/headcount",
      DATABASE_URL: "postgres://u:p@db:5432/headcount",
      PG_POOL_MAX: "20",
      PG_IDLE_TIMEOUT_S: "0",
      PG_MAX_LIFETIME_S: "60",
      PG_CONNECT_TIMEOUT_S: "5",
      BROADCAST_INTERVAL_MS: "50",
      COMMIT_TIMEOUT_MS: "5000",
      RESUME_TTL_S: "120",
      RESUME_SECRET: "0123456789abcdef",
      SHUTDOWN_TIMEOUT_MS: "2000",
      LOG_LEVEL: "WARN",
      PRESENCE_TTL_MS: "3000",
      WORKERS: "4",
    });
    expect(c).toMatchObject({
      port: 9000,
      host: "0.0.0.0",
      dataDir: "/var/lib/headcount",
      databaseUrl: "postgres://u:p@db:5432/headcount",
      pg: { poolMax: 20, idleTimeoutS: 0, maxLifetimeS: 60, connectTimeoutS: 5 },
      broadcastIntervalMs: 50,
      commitTimeoutMs: 5000,
      resumeTtlS: 120,
      resumeSecret: "0123456789abcdef",
      shutdownTimeoutMs: 2000,
      logLevel: "warn",
      presenceTtlMs: 3000,
      workers: 4,
    });
  });

  it("allows PORT=0 (any free port) and 65535", () => {
    expect(parseConfig({ PORT: "0" }).port).toBe(0);
    expect(parseConfig({ PORT: "65535" }).port).toBe(65535);
  });

  const numbers: Array<[string, string[]]> = [
    ["PORT", ["http", "-1", "65536", "80.5", "8080x", "0x50", "1e3", "99999999999999999999999"]],
    ["PG_POOL_MAX", ["0", "1001", "ten"]],
    ["PG_IDLE_TIMEOUT_S", ["86401", "-5", "1.5"]],
    ["PG_MAX_LIFETIME_S", ["604801", "forever"]],
    ["PG_CONNECT_TIMEOUT_S", ["0", "601"]],
    ["BROADCAST_INTERVAL_MS", ["0", "10001", "fast"]],
    ["COMMIT_TIMEOUT_MS", ["99", "3600001"]],
    ["RESUME_TTL_S", ["0", "2592001"]],
    ["SHUTDOWN_TIMEOUT_MS", ["99", "600001", "10s"]],
    ["PRESENCE_TTL_MS", ["199", "600001", "soon"]],
    ["WORKERS", ["0", "65", "auto"]],
  ];
  for (const [name, bad] of numbers) {
    it(`refuses a bad ${name}, naming it`, () => {
      for (const value of bad) {
        const err = configError({ [name]: value });
        expect(err.variable).toBe(name);
        expect(err.message.startsWith(`${name}: `)).toBe(true);
      }
    });
  }

  it("says what was wrong with a number", () => {
    expect(configError({ PORT: "http" }).message).toBe('PORT: expected a whole number, got "http"');
    expect(configError({ PORT: "70000" }).message).toBe("PORT: must be between 0 and 65535, got 70000");
  });

  it("accepts postgres:// and postgresql:// DATABASE_URLs only", () => {
    expect(parseConfig({ DATABASE_URL: "postgres://localhost/db" }).databaseUrl).toBe("postgres://localhost/db");
    expect(parseConfig({ DATABASE_URL: "postgresql://localhost/db" }).databaseUrl).toBe("postgresql://localhost/db");
    for (const bad of ["mysql://localhost/db", "localhost:5432", "http://x", " pg://x", "file:./data", "postgres", "postgres:/x", "postgresql:localhost/db", "postgres//x"]) {
      const err = configError({ DATABASE_URL: bad });
      expect(err.variable).toBe("DATABASE_URL");
      expect(err.message).toMatch(/^DATABASE_URL: /);
    }
  });

  it("reads LOG_LEVEL case-insensitively and refuses unknown levels", () => {
    for (const level of ["debug", "info", "warn", "error"] as const) {
      expect(parseConfig({ LOG_LEVEL: level.toUpperCase() }).logLevel).toBe(level);
    }
    for (const bad of ["verbose", "warning", "trace", "0"]) {
      const err = configError({ LOG_LEVEL: bad });
      expect(err.variable).toBe("LOG_LEVEL");
      expect(err.message).toContain("debug, info, warn, error");
    }
  });

  it("refuses a RESUME_SECRET shorter than 16 characters", () => {
    expect(configError({ RESUME_SECRET: "short" }).variable).toBe("RESUME_SECRET");
    expect(configError({ RESUME_SECRET: "0123456789abcde" }).variable).toBe("RESUME_SECRET");
    expect(parseConfig({ RESUME_SECRET: "0123456789abcdef" }).resumeSecret).toBe("0123456789abcdef");
  });
});
