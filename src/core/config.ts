import { ConfigError } from "./errors.ts";
import type { LogLevel } from "./ports.ts";
import { parseWebhookRules, type WebhookRule } from "./webhook-rules.ts";

/** Every setting, parsed and validated in one place (DESIGN.md §6). */
export interface Config {
  port: number;
  host: string;
  dataDir: string;
  databaseUrl: string | undefined;
  pg: {
    poolMax: number;
    idleTimeoutS: number;
    maxLifetimeS: number;
    connectTimeoutS: number;
    /** Longest wait for a free connection before a query fails fast with 503. */
    acquireTimeoutMs: number;
  };
  rateLimit: { burst: number; perSec: number };
  /** Per-socket message budget (close 1008 past it). */
  messageRate: { burst: number; perSec: number };
  maxSocketsPerIp: number;
  /** Undefined: the runtime derives it from the open-file limit. */
  maxSockets: number | undefined;
  /** Origins allowed to open the WebSocket: "*" or a list. */
  allowedOrigins: "*" | string[];
  /** Header carrying the client address from a trusted proxy (lower case), or undefined to use the peer address. */
  trustProxyHeader: string | undefined;
  /** Sockets that do not answer pings for this long are closed. */
  heartbeatTimeoutMs: number;
  broadcastIntervalMs: number;
  commitTimeoutMs: number;
  resumeTtlS: number;
  resumeSecret: string | undefined;
  shutdownTimeoutMs: number;
  logLevel: LogLevel;
  /** Origins whose pages may read the public JSON API and load the widget's module: "*" or a list. */
  corsOrigins: "*" | string[];
  /** Protects the dashboard's data (and the admin API); undefined leaves them open. */
  adminToken: string | undefined;
  /** How long a silent instance's online counts last. */
  presenceTtlMs: number;
  /** Node processes behind node:cluster (1 = no cluster). */
  workers: number;
  webhooks: {
    rules: WebhookRule[];
    concurrency: number;
    perOrigin: number;
    maxAttempts: number;
    timeoutMs: number;
    connectTimeoutMs: number;
    retryBaseMs: number;
  };
}

export type Env = Readonly<Record<string, string | undefined>>;

const LOG_LEVELS: readonly LogLevel[] = ["debug", "info", "warn", "error"];

function int(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw.trim() === "") return fallback;
  if (!/^\s*\d+\s*$/.test(raw)) throw new ConfigError(name, `expected a whole number, got "${raw}"`);
  const value = Number(raw);
  if (value < min || value > max) throw new ConfigError(name, `must be between ${min} and ${max}, got ${value}`);
  return value;
}

function text(env: Env, name: string, fallback: string): string {
  const raw = env[name];
  return raw === undefined || raw.trim() === "" ? fallback : raw.trim();
}

function optional(env: Env, name: string): string | undefined {
  const raw = env[name];
  return raw === undefined || raw.trim() === "" ? undefined : raw.trim();
}

function databaseUrl(env: Env): string | undefined {
  const raw = optional(env, "DATABASE_URL");
  if (raw === undefined) return undefined;
  if (!/^postgres(ql)?:\/\//.test(raw)) {
    throw new ConfigError("DATABASE_URL", "must start with postgres:// or postgresql://");
  }
  return raw;
}

function logLevel(env: Env): LogLevel {
  const raw = text(env, "LOG_LEVEL", "info").toLowerCase();
  const level = LOG_LEVELS.find((l) => l === raw);
  if (!level) throw new ConfigError("LOG_LEVEL", `must be one of ${LOG_LEVELS.join(", ")}, got "${raw}"`);
  return level;
}

function corsOrigins(env: Env): "*" | string[] {
  const raw = text(env, "CORS_ORIGINS", "*");
  if (raw === "*") return "*";
  return raw.split(",").map((part) => {
    const origin = part.trim().replace(/\/$/, "");
    let parsed: URL | undefined;
    try {
      parsed = new URL(origin);
    } catch {
      parsed = undefined;
    }
    // An origin is scheme://host[:port] and nothing else; that is what browsers send.
    if (!parsed || !/^https?:$/.test(parsed.protocol) || parsed.origin !== origin) {
      throw new ConfigError("CORS_ORIGINS", `expected "*" or a comma-separated list of origins like https://example.com, got "${part.trim()}"`);
    }
    return origin;
  });
}

function adminToken(env: Env): string | undefined {
  const raw = optional(env, "ADMIN_TOKEN");
  if (raw !== undefined && (raw.length < 16 || /\s/.test(raw))) {
    throw new ConfigError("ADMIN_TOKEN", "must be at least 16 characters, without spaces");
  }
  return raw;
}

function origins(env: Env, name: string): "*" | string[] {
  const raw = text(env, name, "*");
  if (raw === "*") return "*";
  return raw.split(",").map((o) => {
    const value = o.trim();
    let parsed: URL;
    try {
      parsed = new URL(value);
    } catch {
      throw new ConfigError(name, `"${value}" is not an origin such as https://example.com`);
    }
    if (parsed.origin !== value.replace(/\/$/, "")) {
      throw new ConfigError(name, `"${value}" is not an origin (scheme://host[:port], no path)`);
    }
    return parsed.origin;
  });
}

function headerName(env: Env, name: string): string | undefined {
  const raw = optional(env, name);
  if (raw === undefined) return undefined;
  if (!/^[A-Za-z0-9-]+$/.test(raw)) throw new ConfigError(name, `"${raw}" is not an HTTP header name`);
  return raw.toLowerCase();
}

/** Throws ConfigError naming the first bad variable. */
export function parseConfig(env: Env): Config {
  const resumeSecret = optional(env, "RESUME_SECRET");
  if (resumeSecret !== undefined && resumeSecret.length < 16) {
    throw new ConfigError("RESUME_SECRET", "must be at least 16 characters");
  }
  return {
    port: int(env, "PORT", 8080, 0, 65535),
    host: text(env, "HOST", "127.0.0.1"),
    dataDir: text(env, "DATA_DIR", "./data"),
    databaseUrl: databaseUrl(env),
    pg: {
      poolMax: int(env, "PG_POOL_MAX", 10, 1, 1000),
      idleTimeoutS: int(env, "PG_IDLE_TIMEOUT_S", 30, 0, 86400),
      maxLifetimeS: int(env, "PG_MAX_LIFETIME_S", 1800, 0, 86400 * 7),
      connectTimeoutS: int(env, "PG_CONNECT_TIMEOUT_S", 10, 1, 600),
      acquireTimeoutMs: int(env, "PG_ACQUIRE_TIMEOUT_MS", 2000, 1, 600_000),
    },
    rateLimit: {
      burst: int(env, "RATE_LIMIT_BURST", 30, 1, 100_000_000),
      perSec: int(env, "RATE_LIMIT_PER_SEC", 1, 0, 100_000_000),
    },
    messageRate: {
      burst: int(env, "MESSAGE_RATE_BURST", 10, 1, 1_000_000),
      perSec: int(env, "MESSAGE_RATE_PER_SEC", 1, 0, 1_000_000),
    },
    maxSocketsPerIp: int(env, "MAX_SOCKETS_PER_IP", 100, 1, 10_000_000),
    maxSockets: env.MAX_SOCKETS?.trim() ? int(env, "MAX_SOCKETS", 0, 1, 10_000_000) : undefined,
    allowedOrigins: origins(env, "ALLOWED_ORIGINS"),
    trustProxyHeader: headerName(env, "TRUST_PROXY_HEADER"),
    heartbeatTimeoutMs: int(env, "HEARTBEAT_TIMEOUT_MS", 30_000, 100, 3_600_000),
    broadcastIntervalMs: int(env, "BROADCAST_INTERVAL_MS", 25, 1, 10_000),
    commitTimeoutMs: int(env, "COMMIT_TIMEOUT_MS", 30_000, 100, 3_600_000),
    resumeTtlS: int(env, "RESUME_TTL_S", 3600, 1, 86400 * 30),
    resumeSecret,
    shutdownTimeoutMs: int(env, "SHUTDOWN_TIMEOUT_MS", 10_000, 100, 600_000),
    logLevel: logLevel(env),
    corsOrigins: corsOrigins(env),
    adminToken: adminToken(env),
    presenceTtlMs: int(env, "PRESENCE_TTL_MS", 15_000, 200, 600_000),
    workers: int(env, "WORKERS", 1, 1, 64),
    webhooks: {
      rules: parseWebhookRules(env.WEBHOOK_RULES),
      concurrency: int(env, "WEBHOOK_CONCURRENCY", 8, 1, 1000),
      perOrigin: int(env, "WEBHOOK_MAX_CONNECTIONS_PER_ORIGIN", 4, 1, 1000),
      maxAttempts: int(env, "WEBHOOK_MAX_ATTEMPTS", 8, 1, 100),
      timeoutMs: int(env, "WEBHOOK_TIMEOUT_MS", 10_000, 100, 600_000),
      connectTimeoutMs: int(env, "WEBHOOK_CONNECT_TIMEOUT_MS", 3000, 100, 600_000),
      retryBaseMs: int(env, "WEBHOOK_RETRY_BASE_MS", 1000, 1, 3_600_000),
    },
  };
}
