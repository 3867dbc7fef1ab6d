import postgres from "postgres";
import { backoffMs } from "../core/backoff.ts";
import type { Bus, BusHandlers, Logger } from "../core/ports.ts";
import { TOTALS_CHANNEL } from "./store.ts";

export const PRESENCE_CHANNEL = "headcount_presence";

export interface PgBusOptions {
  connectTimeoutS: number;
  /** Reconnect backoff bounds. */
  minBackoffMs?: number;
  maxBackoffMs?: number;
}

/**
 * LISTEN/NOTIFY on a dedicated connection. postgres.js has `sql.listen`, but
 * when its connection drops it re-listens once and swallows a failure (a
 * database still restarting), leaving the instance deaf for good; so this bus
 * supervises its own connection and keeps retrying with backoff.
 */
export function createPgBus(url: string, publisher: postgres.Sql, log: Logger, opts: PgBusOptions): Bus {
  let handlers: BusHandlers | null = null;
  let connected = false;
  let everConnected = false;
  let reconnects = 0;
  let closing = false;
  let timer: ReturnType<typeof setTimeout> | null = null;
  let client: postgres.Sql | null = null;
  const minBackoff = opts.minBackoffMs ?? 100;
  const maxBackoff = opts.maxBackoffMs ?? 5000;

  const newClient = () =>
    postgres(url, {
      max: 1,
      idle_timeout: 0,
      max_lifetime: null,
      connect_timeout: opts.connectTimeoutS,
      fetch_types: false,
      onnotice: () => {},
      onnotify: (channel: string, payload: string) => {
        if (channel === TOTALS_CHANNEL) handlers?.onTotal(payload);
        else if (channel === PRESENCE_CHANNEL) handlers?.onPresence(payload);
      },
      onclose: () => {
        if (!connected || closing) return;
        connected = false;
        handlers?.onDisconnect();
        schedule(0);
      },
    } as postgres.Options<{}>);

  const connect = async (attempt: number): Promise<void> => {
    timer = null;
    if (closing) return;
    try {
      client ??= newClient();
      await client`listen ${client(TOTALS_CHANNEL)}`;
      await client`listen ${client(PRESENCE_CHANNEL)}`;
    } catch (err) {
      const old = client;
      client = null;
      void old?.end({ timeout: 0 }).catch(() => {});
      if (!everConnected) throw err; // start-up: the caller decides
      if (attempt <= 1 || attempt % 10 === 0) log.warn("bus connect failed; retrying", { err, attempt });
      schedule(attempt);
      return;
    }
    connected = true;
    const reconnected = everConnected;
    everConnected = true;
    if (reconnected) reconnects++;
    handlers?.onConnect(reconnected);
  };

  /** Reconnects after the `attempt`th backoff (0: the first retry), with jitter. */
  const schedule = (attempt: number) => {
    if (closing || timer !== null) return;
    const delay = backoffMs(attempt, { baseMs: minBackoff, maxMs: maxBackoff });
    timer = setTimeout(() => void connect(attempt + 1).catch(() => {}), delay);
  };

  return {
    async start(h) {
      handlers = h;
      await connect(0);
    },
    async publishPresence(payload) {
      await publisher`select pg_notify(${PRESENCE_CHANNEL}, ${payload})`;
    },
    get connected() {
      return connected;
    },
    get reconnects() {
      return reconnects;
    },
    async close() {
      closing = true;
      if (timer !== null) clearTimeout(timer);
      await client?.end({ timeout: 1 });
    },
  };
}
