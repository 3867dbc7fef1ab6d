// Settings are valibot schemas (./schemas.ts): valibot is runtime-neutral and does no I/O, so core/ may use it (DESIGN.md §1).
import { ConfigError } from "./errors.ts";
import type { LogLevel } from "./ports.ts";
import { allowedOriginList, boundedInt, headerName, oneOf, optionalText, originList, parseText, textOr, type TextSchema } from "./schemas.ts";
import { webhookRulesSchema, type WebhookRule } from "./webhook-rules.ts";

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
  /** Origins allowed to open the WebSocket: "*", or a list of origins and "self" (the request's own Host). */
  allowedOrigins: "*" | string[];
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
  /** Bounds on what strangers can make a server store or hold (DESIGN.md §3, §7). */
  limits: {
    /** MAX_KEYS: distinct keys the server accepts. */
    maxKeys: number;
    /** HISTORY_RETENTION_DAYS: how long per-minute history and daily visitor counts are kept. */
    historyRetentionDays: number;
    /** MAX_BUFFERED_BYTES: unsent bytes a socket or stream may hold before it is cut. */
    maxBufferedBytes: number;
    /** IPV6_PREFIX: per-address limits count an IPv6 client by this prefix length. */
    ipv6Prefix: number;
  };
  /** Where the client address comes from behind trusted proxies. */
  proxy: {
    /** TRUST_PROXY_HEADER, lower case, or undefined to use the peer address. */
    header: string | undefined;
    /** TRUST_PROXY_HOPS: trusted proxies appending to the header; the client address is the Nth entry from the right. */
    hops: number;
  };
  /** The HTTP server's own connection bounds. */
  http: {
    /** MAX_CONNECTIONS_PER_IP: open HTTP connections per address. */
    maxConnectionsPerIp: number;
    /** HEADERS_TIMEOUT_MS: longest wait for a request's headers. */
    headersTimeoutMs: number;
    /** KEEP_ALIVE_TIMEOUT_MS: how long an idle kept-alive connection stays open. */
    keepAliveTimeoutMs: number;
  };
  /** SSE_KEEPALIVE_MS: interval of the comment line that keeps an idle event stream open through proxies. */
  sseKeepaliveMs: number;
}

export type Env = Readonly<Record<string, string | undefined>>;

const LOG_LEVELS = ["debug", "info", "warn", "error"] as const satisfies readonly LogLevel[];

/** Throws ConfigError naming the first bad variable. */
export function parseConfig(env: Env): Config {
  /** One variable: its schema gives the type, the default and the message; the error names the variable. */
  const read = <T>(name: string, schema: TextSchema<T>): T => {
    const result = parseText(schema, env[name]);
    if (!result.ok) throw new ConfigError(name, result.message);
    return result.value;
  };
  const trustProxyHeader = read("TRUST_PROXY_HEADER", headerName);
  return {
    port: read("PORT", boundedInt(0, 65535, 8080)),
    host: read("HOST", textOr("127.0.0.1")),
    dataDir: read("DATA_DIR", textOr("./data")),
    databaseUrl: read("DATABASE_URL", optionalText((s) => /^postgres(ql)?:\/\//.test(s), "must start with postgres:// or postgresql://")),
    pg: {
      poolMax: read("PG_POOL_MAX", boundedInt(1, 1000, 10)),
      idleTimeoutS: read("PG_IDLE_TIMEOUT_S", boundedInt(0, 86400, 30)),
      maxLifetimeS: read("PG_MAX_LIFETIME_S", boundedInt(0, 86400 * 7, 1800)),
      connectTimeoutS: read("PG_CONNECT_TIMEOUT_S", boundedInt(1, 600, 10)),
      acquireTimeoutMs: read("PG_ACQUIRE_TIMEOUT_MS", boundedInt(1, 600_000, 2000)),
    },
    rateLimit: {
      burst: read("RATE_LIMIT_BURST", boundedInt(1, 100_000_000, 30)),
      perSec: read("RATE_LIMIT_PER_SEC", boundedInt(0, 100_000_000, 1)),
    },
    messageRate: {
      burst: read("MESSAGE_RATE_BURST", boundedInt(1, 1_000_000, 10)),
      perSec: read("MESSAGE_RATE_PER_SEC", boundedInt(0, 1_000_000, 1)),
    },
    maxSocketsPerIp: read("MAX_SOCKETS_PER_IP", boundedInt(1, 10_000_000, 100)),
    maxSockets: read("MAX_SOCKETS", boundedInt(1, 10_000_000)),
    allowedOrigins: read("ALLOWED_ORIGINS", allowedOriginList),
    heartbeatTimeoutMs: read("HEARTBEAT_TIMEOUT_MS", boundedInt(100, 3_600_000, 30_000)),
    broadcastIntervalMs: read("BROADCAST_INTERVAL_MS", boundedInt(1, 10_000, 25)),
    commitTimeoutMs: read("COMMIT_TIMEOUT_MS", boundedInt(100, 3_600_000, 30_000)),
    resumeTtlS: read("RESUME_TTL_S", boundedInt(1, 86400 * 30, 3600)),
    resumeSecret: read("RESUME_SECRET", optionalText((s) => s.length >= 16, "must be at least 16 characters")),
    shutdownTimeoutMs: read("SHUTDOWN_TIMEOUT_MS", boundedInt(100, 600_000, 10_000)),
    logLevel: read("LOG_LEVEL", oneOf(LOG_LEVELS, "info")),
    corsOrigins: read("CORS_ORIGINS", originList),
    adminToken: read("ADMIN_TOKEN", optionalText((s) => s.length >= 16 && !/\s/.test(s), "must be at least 16 characters, without spaces")),
    presenceTtlMs: read("PRESENCE_TTL_MS", boundedInt(200, 600_000, 15_000)),
    workers: read("WORKERS", boundedInt(1, 64, 1)),
    webhooks: {
      rules: read("WEBHOOK_RULES", webhookRulesSchema),
      concurrency: read("WEBHOOK_CONCURRENCY", boundedInt(1, 1000, 8)),
      perOrigin: read("WEBHOOK_MAX_CONNECTIONS_PER_ORIGIN", boundedInt(1, 1000, 4)),
      maxAttempts: read("WEBHOOK_MAX_ATTEMPTS", boundedInt(1, 100, 8)),
      timeoutMs: read("WEBHOOK_TIMEOUT_MS", boundedInt(100, 600_000, 10_000)),
      connectTimeoutMs: read("WEBHOOK_CONNECT_TIMEOUT_MS", boundedInt(100, 600_000, 3000)),
      retryBaseMs: read("WEBHOOK_RETRY_BASE_MS", boundedInt(1, 3_600_000, 1000)),
    },
    limits: {
      maxKeys: read("MAX_KEYS", boundedInt(1, 100_000_000, 100_000)),
      historyRetentionDays: read("HISTORY_RETENTION_DAYS", boundedInt(1, 3650, 90)),
      maxBufferedBytes: read("MAX_BUFFERED_BYTES", boundedInt(16_384, 67_108_864, 1_048_576)),
      ipv6Prefix: read("IPV6_PREFIX", boundedInt(32, 128, 64)),
    },
    proxy: {
      header: trustProxyHeader,
      hops: read("TRUST_PROXY_HOPS", boundedInt(1, 10, 1)),
    },
    http: {
      maxConnectionsPerIp: read("MAX_CONNECTIONS_PER_IP", boundedInt(1, 1_000_000, 256)),
      headersTimeoutMs: read("HEADERS_TIMEOUT_MS", boundedInt(1000, 120_000, 10_000)),
      keepAliveTimeoutMs: read("KEEP_ALIVE_TIMEOUT_MS", boundedInt(100, 120_000, 5000)),
    },
    sseKeepaliveMs: read("SSE_KEEPALIVE_MS", boundedInt(1000, 120_000, 15_000)),
  };
}
