import { describe, expect, it } from "vitest";
import { parseConfig, type Config, type Env } from "./config.ts";
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

  it("names the first bad variable when several are bad", () => {
    expect(configError({ PORT: "x", WORKERS: "0" }).variable).toBe("PORT");
    expect(configError({ WORKERS: "0", SSE_KEEPALIVE_MS: "0" }).variable).toBe("WORKERS");
  });
});

// Every whole-number setting: [variable, where it lands, min, max, default].
const WHOLE_NUMBERS: Array<[string, (c: Config) => number | undefined, number, number, number | undefined]> = [
  ["PORT", (c) => c.port, 0, 65535, 8080],
  ["PG_POOL_MAX", (c) => c.pg.poolMax, 1, 1000, 10],
  ["PG_IDLE_TIMEOUT_S", (c) => c.pg.idleTimeoutS, 0, 86400, 30],
  ["PG_MAX_LIFETIME_S", (c) => c.pg.maxLifetimeS, 0, 604_800, 1800],
  ["PG_CONNECT_TIMEOUT_S", (c) => c.pg.connectTimeoutS, 1, 600, 10],
  ["PG_ACQUIRE_TIMEOUT_MS", (c) => c.pg.acquireTimeoutMs, 1, 600_000, 2000],
  ["RATE_LIMIT_BURST", (c) => c.rateLimit.burst, 1, 100_000_000, 30],
  ["RATE_LIMIT_PER_SEC", (c) => c.rateLimit.perSec, 0, 100_000_000, 1],
  ["MESSAGE_RATE_BURST", (c) => c.messageRate.burst, 1, 1_000_000, 10],
  ["MESSAGE_RATE_PER_SEC", (c) => c.messageRate.perSec, 0, 1_000_000, 1],
  ["MAX_SOCKETS_PER_IP", (c) => c.maxSocketsPerIp, 1, 10_000_000, 100],
  ["MAX_SOCKETS", (c) => c.maxSockets, 1, 10_000_000, undefined],
  ["HEARTBEAT_TIMEOUT_MS", (c) => c.heartbeatTimeoutMs, 100, 3_600_000, 30_000],
  ["BROADCAST_INTERVAL_MS", (c) => c.broadcastIntervalMs, 1, 10_000, 25],
  ["COMMIT_TIMEOUT_MS", (c) => c.commitTimeoutMs, 100, 3_600_000, 30_000],
  ["RESUME_TTL_S", (c) => c.resumeTtlS, 1, 2_592_000, 3600],
  ["SHUTDOWN_TIMEOUT_MS", (c) => c.shutdownTimeoutMs, 100, 600_000, 10_000],
  ["PRESENCE_TTL_MS", (c) => c.presenceTtlMs, 200, 600_000, 15_000],
  ["WORKERS", (c) => c.workers, 1, 64, 1],
  ["WEBHOOK_CONCURRENCY", (c) => c.webhooks.concurrency, 1, 1000, 8],
  ["WEBHOOK_MAX_CONNECTIONS_PER_ORIGIN", (c) => c.webhooks.perOrigin, 1, 1000, 4],
  ["WEBHOOK_MAX_ATTEMPTS", (c) => c.webhooks.maxAttempts, 1, 100, 8],
  ["WEBHOOK_TIMEOUT_MS", (c) => c.webhooks.timeoutMs, 100, 600_000, 10_000],
  ["WEBHOOK_CONNECT_TIMEOUT_MS", (c) => c.webhooks.connectTimeoutMs, 100, 600_000, 3000],
  ["WEBHOOK_RETRY_BASE_MS", (c) => c.webhooks.retryBaseMs, 1, 3_600_000, 1000],
  ["MAX_KEYS", (c) => c.limits.maxKeys, 1, 100_000_000, 100_000],
  ["HISTORY_RETENTION_DAYS", (c) => c.limits.historyRetentionDays, 1, 3650, 90],
  ["MAX_BUFFERED_BYTES", (c) => c.limits.maxBufferedBytes, 16_384, 67_108_864, 1_048_576],
  ["IPV6_PREFIX", (c) => c.limits.ipv6Prefix, 32, 128, 64],
  ["TRUST_PROXY_HOPS", (c) => c.proxy.hops, 1, 10, 1],
  ["MAX_CONNECTIONS_PER_IP", (c) => c.http.maxConnectionsPerIp, 1, 1_000_000, 256],
  ["HEADERS_TIMEOUT_MS", (c) => c.http.headersTimeoutMs, 1000, 120_000, 10_000],
  ["KEEP_ALIVE_TIMEOUT_MS", (c) => c.http.keepAliveTimeoutMs, 100, 120_000, 5000],
  ["SSE_KEEPALIVE_MS", (c) => c.sseKeepaliveMs, 1000, 120_000, 15_000],
];

describe.each(WHOLE_NUMBERS)("%s", (name, at, min, max, fallback) => {
  it(`defaults to ${fallback} and takes ${min} to ${max}`, () => {
    expect(at(parseConfig({}))).toBe(fallback);
    expect(at(parseConfig({ [name]: " " }))).toBe(fallback);
    expect(at(parseConfig({ [name]: String(min) }))).toBe(min);
    expect(at(parseConfig({ [name]: String(max) }))).toBe(max);
  });

  it("refuses values out of range or not whole numbers, with a message naming it", () => {
    if (min > 0) expect(configError({ [name]: String(min - 1) }).message).toBe(`${name}: must be between ${min} and ${max}, got ${min - 1}`);
    expect(configError({ [name]: String(max + 1) }).message).toBe(`${name}: must be between ${min} and ${max}, got ${max + 1}`);
    for (const bad of ["-1", "1.5", "1e3", "many"]) {
      const err = configError({ [name]: bad });
      expect(err.variable).toBe(name);
      expect(err.message).toBe(`${name}: expected a whole number, got "${bad}"`);
    }
  });
});

describe("TRUST_PROXY_HEADER", () => {
  it("is read into proxy.header, lower case, with the hops", () => {
    expect(parseConfig({}).proxy).toEqual({ header: undefined, hops: 1 });
    const c = parseConfig({ TRUST_PROXY_HEADER: "X-Forwarded-For", TRUST_PROXY_HOPS: "2" });
    expect(c.proxy).toEqual({ header: "x-forwarded-for", hops: 2 });
    expect(configError({ TRUST_PROXY_HEADER: "x forwarded" }).message).toBe('TRUST_PROXY_HEADER: "x forwarded" is not an HTTP header name');
  });
});

describe("ALLOWED_ORIGINS", () => {
  it("defaults to self; takes *, or a list of self and http(s) origins", () => {
    expect(parseConfig({}).allowedOrigins).toEqual(["self"]);
    expect(parseConfig({ ALLOWED_ORIGINS: " * " }).allowedOrigins).toBe("*");
    expect(parseConfig({ ALLOWED_ORIGINS: "https://a.example/, http://localhost:3000" }).allowedOrigins).toEqual(["https://a.example", "http://localhost:3000"]);
    expect(parseConfig({ ALLOWED_ORIGINS: "SELF,https://blog.example" }).allowedOrigins).toEqual(["self", "https://blog.example"]);
    for (const bad of ["a.example", "https://a.example/path", "ftp://a.example", "https://a.example,,https://b.example", "*,self", "selfish"]) {
      expect(configError({ ALLOWED_ORIGINS: bad }).message).toMatch(/^ALLOWED_ORIGINS: expected "\*", or a comma-separated list of "self" and origins/);
    }
  });

  it("leaves CORS_ORIGINS as it was: * by default", () => {
    expect(parseConfig({}).corsOrigins).toBe("*");
  });
});

describe("WEBHOOK_RULES", () => {
  it("is refused naming the variable, the rule and the field", () => {
    const err = configError({ WEBHOOK_RULES: JSON.stringify([{ key: "/a", every: 0, url: "https://h.example/" }]) });
    expect(err.variable).toBe("WEBHOOK_RULES");
    expect(err.message).toBe("WEBHOOK_RULES: rule 0: every must be a whole number of 1 or more");
  });
});

