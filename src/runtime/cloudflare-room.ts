// One Durable Object per counter key (Workers, DESIGN.md §5): it owns the
// key's sockets through the WebSocket Hibernation API, counts visits with
// core's group-commit batcher and sends core's coalesced count messages.
// https://developers.cloudflare.com/durable-objects/best-practices/websockets/
//
// Hibernation: between events the object may be evicted from memory while its
// sockets stay open. Everything a socket needs afterwards is in its
// attachment; the object's own memory (total, seq) is rebuilt from storage.
import type * as CF from "@cloudflare/workers-types/index.ts";
import { WriteBatcher } from "../core/batcher.ts";
import { Broadcaster } from "../core/broadcaster.ts";
import { parseConfig, type Config } from "../core/config.ts";
import { HeadcountError } from "../core/errors.ts";
import { validateKey } from "../core/keys.ts";
import { createLogger } from "../core/logger.ts";
import type { CounterStore, Logger, Outbox, Signer } from "../core/ports.ts";
import { CloseCode, encode, parseClientMessage, PONG } from "../core/protocol.ts";
import { MessageBucket } from "../core/rate-limiter.ts";
import { issueResumeToken, verifyResumeToken } from "../core/resume.ts";
import { milestonesCrossed, ruleMatches } from "../core/webhook-rules.ts";
import { OnlineTrigger } from "../core/webhook-trigger.ts";
import { deliverEvent } from "../core/webhook-worker.ts";
import { openDurableSqlite, type DurableSqliteStore } from "../db/sqlite/durable.ts";
import { latestMigrationHash, openHyperdrive } from "../db/hyperdrive.ts";
import { systemClock } from "./clock.ts";
import { fetchPoster } from "./fetch-poster.ts";
import { hmacHex, hmacSigner, randomSecret } from "./signer.ts";

// Workers globals, typed from the importable Workers types (see cloudflare.ts).
declare const WebSocketPair: typeof CF.WebSocketPair;
declare const WebSocketRequestResponsePair: typeof CF.WebSocketRequestResponsePair;

export interface WorkerEnv {
  ROOMS: CF.DurableObjectNamespace;
  /** One object (cloudflare-index.ts) that every room reports its key's numbers to: top keys, site totals, the admin list. */
  INDEX: CF.DurableObjectNamespace;
  ASSETS?: CF.Fetcher;
  /** When bound, counters live in PostgreSQL through Hyperdrive instead of each object's SQLite. */
  HYPERDRIVE?: CF.Hyperdrive;
  /** Plain-text vars and secrets: BROADCAST_INTERVAL_MS, RESUME_SECRET, LOG_LEVEL, … */
  [name: string]: unknown;
}

/** The string vars of `env`, for core's parseConfig (bindings are objects and are left out). */
export function varsOf(env: WorkerEnv): Record<string, string> {
  const vars: Record<string, string> = {};
  for (const [name, value] of Object.entries(env)) if (typeof value === "string") vars[name] = value;
  return vars;
}

/**
 * Per-socket state kept with serializeAttachment, so it survives hibernation.
 * Budget: key ≤ 256 bytes of UTF-8 (keys.ts), visitor a number, resume token
 * ≤ ~60 characters: under 1 KiB structured-cloned, well inside the 2,048 bytes
 * the platform allows per socket.
 */
export interface SocketState {
  key: string;
  /** 0 until the visit has committed (or the resume token was accepted) and the hello went out. */
  visitor: number;
  resume: string | null;
}

/** The exact frame the runtime answers without waking the object. */
const PING_FRAME = '{"type":"ping"}';
/** Sequence numbers are reserved in blocks, so a woken object never reuses one a client has seen. */
const SEQ_BLOCK = 1000;
const OPEN = 1;

/** What a room needs of its store: the object's SQLite (durable-sqlite.ts) or PostgreSQL through Hyperdrive (store.ts). */
type RoomStore = CounterStore &
  Pick<DurableSqliteStore, "ensureSetting" | "setTotal" | "outbox" | "history"> & {
    /** The object's SQLite knows its own outbox; PostgreSQL's is shared, so it has none. */
    nextDue?(): number | null;
  };

interface Ready {
  store: RoomStore;
  signer: Signer;
  batcher: WriteBatcher;
  /** The store's outbox, telling the room when an online event was written. */
  outbox: Outbox;
  trigger: OnlineTrigger;
}

/** The index object's name; a control character, so never a counter's key. */
export const INDEX_OBJECT = "\u0000index";
/** A room tells the index about its key at most this often. */
export const REPORT_INTERVAL_MS = 1000;

const encoder = new TextEncoder();

function closeCodeToEcho(code: number): number {
  // 1005/1006/1015 describe a close and must never be sent; anything else outside the sendable range neither.
  return code >= 1000 && code < 5000 && code !== 1004 && code !== 1005 && code !== 1006 && code !== 1015 ? code : 1000;
}

export class CounterRoom {
  readonly #ctx: CF.DurableObjectState;
  readonly #env: WorkerEnv;
  readonly #config: Config;
  readonly #log: Logger;
  readonly #broadcaster: Broadcaster;
  /** Sockets that closed or errored while the runtime may still list them. */
  readonly #gone = new WeakSet<CF.WebSocket>();
  /** Per-socket message budgets (core's MessageBucket); in memory, so a socket woken from hibernation starts a fresh one. */
  readonly #buckets = new WeakMap<CF.WebSocket, MessageBucket>();
  /** Reports to the index object, coalesced to one per REPORT_INTERVAL_MS. */
  readonly #reporter: Broadcaster;
  #reporting = false;
  #reportAgain = false;
  #reportReset = false;
  /** An administrator set the total: the next count carries `reset`. */
  #resetPending = false;
  /** Counts #wake calls, so an alarm run knows whether an event was written while it ran. */
  #wakes = 0;
  #ready: Promise<Ready> | null = null;
  #key: string | null = null;
  #total = 0;
  #totalKnown = false;
  #seq = 0;
  #seqCeiling = 0;

  constructor(ctx: CF.DurableObjectState, env: WorkerEnv) {
    this.#ctx = ctx;
    this.#env = env;
    this.#config = parseConfig(varsOf(env));
    this.#log = createLogger(this.#config.logLevel, (line) => console.log(line), { runtime: "worker", room: ctx.id.toString().slice(0, 12) });
    this.#broadcaster = new Broadcaster(this.#config.broadcastIntervalMs, systemClock, () => void this.#emit());
    this.#reporter = new Broadcaster(REPORT_INTERVAL_MS, systemClock, () => void this.#report());
    // Idle pings are answered by the runtime itself and never wake the object.
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair(PING_FRAME, PONG));
    this.#seq = this.#seqCeiling = Number(ctx.storage.kv.get<number>("seq_ceiling") ?? 0);
    this.#log.debug("object started", { sockets: ctx.getWebSockets().length, seq: this.#seq });
    // Migrations (and the resume secret) before any event is delivered. A
    // failure (PostgreSQL down) is not fatal: the next event retries.
    void ctx.blockConcurrencyWhile(() => this.#open().then(() => undefined, () => undefined));
  }

  #open(): Promise<Ready> {
    this.#ready ??= this.#connect().catch((err: unknown) => {
      this.#ready = null;
      this.#log.warn("store unavailable", { err });
      throw err;
    });
    return this.#ready;
  }

  async #connect(): Promise<Ready> {
    const store = await this.#openStore();
    const secret = this.#config.resumeSecret ?? (await store.ensureSetting("resume_secret", randomSecret()));
    const rules = this.#config.webhooks.rules;
    // Milestones: the object's SQLite writes them in the increment's transaction and sets the
    // alarm there (onFired); PostgreSQL's statement writes them, and the room sets the alarm
    // when the commit crossed one of its key's milestones.
    const counted: CounterStore = store.nextDue
      ? store
      : {
          ...store,
          increment: async (counts) => {
            const totals = await store.increment(counts);
            for (const [key, total] of totals) {
              const n = counts.get(key) ?? 0;
              if (rules.some((r) => ruleMatches(r, key) && milestonesCrossed(r, total - n, total, 1).length > 0)) this.#wake();
            }
            return totals;
          },
        };
    const batcher = new WriteBatcher(counted, systemClock, this.#log, { commitTimeoutMs: this.#config.commitTimeoutMs });
    const outbox: Outbox = {
      ...store.outbox,
      fireOnline: async (ruleId, key, threshold, online, total) => {
        const fired = await store.outbox.fireOnline(ruleId, key, threshold, online, total);
        if (fired) this.#wake();
        return fired;
      },
    };
    // An event written just before an eviction, whose alarm was not set, is picked up here.
    if (rules.length > 0 && store.nextDue && store.nextDue() !== null && (await this.#ctx.storage.getAlarm()) === null) this.#wake();
    return { store, signer: hmacSigner(secret), batcher, outbox, trigger: new OnlineTrigger(rules, outbox, this.#log) };
  }

  async #openStore(): Promise<RoomStore> {
    const hyperdrive = this.#env.HYPERDRIVE;
    const rules = this.#config.webhooks.rules;
    if (!hyperdrive) return openDurableSqlite(this.#ctx.storage, { rules, onFired: () => this.#wake() });
    const store = openHyperdrive(hyperdrive.connectionString, this.#config.pg.connectTimeoutS);
    // Each object migrates once per migration set and database, then remembers it in its own storage.
    const database = `${hyperdrive.host}:${hyperdrive.port}/${hyperdrive.database}`;
    const applied = `${latestMigrationHash()} ${database}`;
    if (this.#ctx.storage.kv.get<string>("pg_migrated") !== applied) {
      await store.migrate();
      this.#ctx.storage.kv.put("pg_migrated", applied);
    }
    // The increment statement joins webhook_rules; the rules are registered once per rule set and database.
    const registered = `${database} ${JSON.stringify(rules.map((r) => r.id))}`;
    if (this.#ctx.storage.kv.get<string>("pg_webhook_rules") !== registered) {
      await store.registerWebhookRules(rules);
      this.#ctx.storage.kv.put("pg_webhook_rules", registered);
    }
    store.fireMilestones(rules);
    return store;
  }

  // --- webhooks: delivered from the object's alarm, which survives eviction ---

  /** Delivery is due now: the alarm runs as soon as this event (and its writes) are done. */
  #wake(): void {
    this.#wakes++;
    void this.#ctx.storage.setAlarm(Date.now());
  }

  async alarm(): Promise<void> {
    const wh = this.#config.webhooks;
    if (wh.rules.length === 0) return;
    const { store } = await this.#open();
    const lockMs = wh.timeoutMs + 5000;
    // If this run dies mid-delivery, the object comes back when the claimed events' locks have expired.
    await this.#ctx.storage.setAlarm(Date.now() + lockMs + 1000);
    const wakes = this.#wakes;
    const rules = new Map(wh.rules.map((r) => [r.id, r]));
    const poster = fetchPoster({ timeoutMs: wh.timeoutMs });
    // One batch at a time, no larger than the per-origin cap, so no receiver ever has more than that from this object.
    const batch = Math.min(wh.concurrency, wh.perOrigin);
    let retryAt = Number.POSITIVE_INFINITY;
    for (;;) {
      const events = await store.outbox.claim(batch, lockMs, [...rules.keys()]);
      const outcomes = await Promise.all(
        events.map((e) =>
          deliverEvent(e, rules.get(e.ruleId), store.outbox, poster, hmacHex, systemClock, this.#log, {
            maxAttempts: wh.maxAttempts,
            retryBaseMs: wh.retryBaseMs,
            retryMaxMs: 5 * 60_000,
          }),
        ),
      );
      for (const o of outcomes) if (o.result === "retry") retryAt = Math.min(retryAt, Date.now() + o.retryInMs);
      if (events.length < batch) break;
    }
    // An event written while this ran (PostgreSQL's outbox is not this object's to query) is due now.
    if (this.#wakes !== wakes) retryAt = Date.now();
    const next = store.nextDue ? store.nextDue() : Number.isFinite(retryAt) ? retryAt : null;
    if (next === null) await this.#ctx.storage.deleteAlarm();
    else await this.#ctx.storage.setAlarm(Math.max(next, Date.now()));
  }

  async fetch(request: Request): Promise<Response> {
    const url = new URL(request.url);
    try {
      switch (url.pathname) {
        case "/ws":
          return this.#accept(validateKey(url.searchParams.get("key")), url.searchParams.get("resume"), url.searchParams.get("address") ?? "unknown");
        case "/snapshot":
          return Response.json(await this.#snapshot(validateKey(url.searchParams.get("key"))));
        case "/history": {
          const key = validateKey(url.searchParams.get("key"));
          return Response.json(await (await this.#open()).store.history(key, Number(url.searchParams.get("minutes") ?? 180)));
        }
        case "/set":
          if (request.method !== "POST") break;
          await this.#setTotal(validateKey(url.searchParams.get("key")), Number(url.searchParams.get("total")));
          return Response.json({ ok: true });
        case "/ping":
          await (await this.#open()).store.ping();
          return Response.json({ status: "ready" });
      }
      return Response.json({ error: "not_found" }, { status: 404 });
    } catch (err) {
      if (err instanceof HeadcountError) return Response.json({ error: err.code, message: err.message }, { status: err.status });
      const message = err instanceof Error ? err.message : String(err);
      return Response.json({ error: "unavailable", message: `database unavailable: ${message}` }, { status: 503 });
    }
  }

  // --- sockets ---

  #accept(key: string, resume: string | null, address: string): Response {
    this.#key = key;
    // Socket caps per object, that is per key: MAX_SOCKETS (unset: no cap of ours) and MAX_SOCKETS_PER_IP.
    const tag = `a:${address}`.slice(0, 256);
    const open = this.#openSockets();
    const max = this.#config.maxSockets;
    const refusal =
      max !== undefined && open.length >= max
        ? "server is at its socket limit"
        : this.#ctx.getWebSockets(tag).filter((ws) => this.#isOpen(ws)).length >= this.#config.maxSocketsPerIp
          ? "too many sockets from your address"
          : null;
    if (refusal) return Response.json({ error: "too_many_sockets", message: refusal }, { status: 503, headers: { "Retry-After": "5" } });
    const pair = new WebSocketPair();
    const client = pair[0];
    const server = pair[1];
    // The address tag lives with the socket in the runtime's memory only (never in storage).
    this.#ctx.acceptWebSocket(server, [tag]);
    server.serializeAttachment({ key, visitor: 0, resume: null } satisfies SocketState);
    // hono/cloudflare-workers never fires an open event, and neither does the
    // Hibernation API: the visit is counted here, where the socket is accepted.
    this.#broadcaster.touch(key);
    void this.#count(server, key, resume);
    // Workers' ResponseInit takes the client end; the DOM typing of Response does not know it.
    return new Response(null, { status: 101, webSocket: client } as ResponseInit);
  }

  /** Commits the visit (or accepts the resume token), then greets the joiner. */
  async #count(ws: CF.WebSocket, key: string, resume: string | null): Promise<void> {
    try {
      const { signer, batcher } = await this.#open();
      const nowS = Math.floor(Date.now() / 1000);
      const claim = resume === null ? null : verifyResumeToken(signer, key, resume, nowS);
      let visitor: number;
      let token: string;
      if (claim) {
        await this.#knownTotal(key);
        visitor = claim.visitor;
        token = resume!;
      } else {
        const committed = await batcher.add(key);
        this.#observe(committed.total);
        visitor = committed.visitor;
        token = issueResumeToken(signer, key, visitor, nowS + this.#config.resumeTtlS);
      }
      if (!this.#isOpen(ws)) return;
      ws.serializeAttachment({ key, visitor, resume: token } satisfies SocketState);
      ws.send(encode({ type: "hello", key, total: this.#total, online: this.#online(), visitor, resume: token, seq: this.#seq }));
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      this.#log.warn("visit refused", { err: message });
      this.#close(ws, CloseCode.tryAgainLater, message.slice(0, 120));
    }
  }

  webSocketMessage(ws: CF.WebSocket, message: string | ArrayBuffer): void {
    try {
      const text = typeof message === "string" ? message : null;
      const bytes = typeof message === "string" ? encoder.encode(message).byteLength : message.byteLength;
      // Core's per-socket budget, as in hub.ts: over it, close 1008 before looking at the message.
      const now = Date.now();
      let bucket = this.#buckets.get(ws);
      if (!bucket) this.#buckets.set(ws, (bucket = new MessageBucket(this.#config.messageRate.burst, this.#config.messageRate.perSec, now)));
      if (!bucket.take(now)) {
        this.#close(ws, CloseCode.policy, "too many messages");
        return;
      }
      const parsed = parseClientMessage(text, bytes);
      if (parsed.ok) ws.send(PONG);
      else this.#close(ws, parsed.code, parsed.reason);
    } catch (err) {
      this.#log.error("webSocketMessage failed", { err });
    }
  }

  webSocketClose(ws: CF.WebSocket, code: number, _reason: string, _wasClean: boolean): void {
    try {
      this.#gone.add(ws);
      // Complete the closing handshake (a no-op where the runtime already replied).
      try {
        ws.close(closeCodeToEcho(code), "closing");
      } catch {
        // already closed
      }
      this.#left(ws);
    } catch (err) {
      this.#log.error("webSocketClose failed", { err });
    }
  }

  webSocketError(ws: CF.WebSocket, error: unknown): void {
    this.#gone.add(ws);
    this.#log.debug("socket error", { err: error });
    this.#left(ws);
  }

  #left(ws: CF.WebSocket): void {
    const state = ws.deserializeAttachment() as SocketState | null;
    const key = this.#key ?? state?.key;
    if (!key) return;
    this.#key = key;
    this.#broadcaster.touch(key);
  }

  // --- the index object ---

  /** Tells the index this key's total and online now; one report in flight, the latest numbers, at most once a second. */
  async #report(): Promise<void> {
    const key = this.#key;
    if (!key) return;
    if (this.#reporting) {
      this.#reportAgain = true;
      return;
    }
    this.#reporting = true;
    const reset = this.#reportReset;
    this.#reportReset = false;
    try {
      const body = JSON.stringify({ key, total: this.#totalKnown ? this.#total : null, online: this.#online(), reset });
      const stub = this.#env.INDEX.get(this.#env.INDEX.idFromName(INDEX_OBJECT));
      const res = await stub.fetch("https://index/report", { method: "POST", body });
      await res.arrayBuffer();
    } catch (err) {
      this.#reportReset ||= reset;
      this.#reportAgain = true;
      this.#log.debug("index report failed", { err });
    } finally {
      this.#reporting = false;
      if (this.#reportAgain) {
        this.#reportAgain = false;
        this.#reporter.touch(key);
      }
    }
  }

  async #setTotal(key: string, total: number): Promise<void> {
    if (!Number.isSafeInteger(total) || total < 0) throw new HeadcountError(400, "bad_request", "total must be a whole number of 0 or more");
    this.#key ??= key;
    const { store } = await this.#open();
    await store.setTotal(key, total);
    this.#total = total;
    this.#totalKnown = true;
    this.#resetPending = true;
    this.#reportReset = true;
    this.#broadcaster.touch(key);
  }

  #close(ws: CF.WebSocket, code: number, reason: string): void {
    this.#gone.add(ws);
    try {
      ws.close(code, reason);
    } catch {
      // already closed
    }
    const state = ws.deserializeAttachment() as SocketState | null;
    if (state) this.#left(ws);
  }

  #isOpen(ws: CF.WebSocket): boolean {
    return ws.readyState === OPEN && !this.#gone.has(ws);
  }

  /** Online now is the number of this key's accepted sockets that are still open. */
  #openSockets(): CF.WebSocket[] {
    return this.#ctx.getWebSockets().filter((ws) => this.#isOpen(ws));
  }

  #online(): number {
    return this.#openSockets().length;
  }

  // --- totals and broadcasts ---

  #observe(total: number): void {
    const moved = !this.#totalKnown || total > this.#total;
    this.#totalKnown = true;
    if (total > this.#total) this.#total = total;
    if (moved && this.#key) {
      this.#broadcaster.touch(this.#key);
      this.#reporter.touch(this.#key);
    }
  }

  async #knownTotal(key: string): Promise<void> {
    if (this.#totalKnown) return;
    const { store } = await this.#open();
    this.#observe((await store.totals([key])).get(key) ?? 0);
  }

  async #snapshot(key: string): Promise<{ key: string; total: number; online: number }> {
    this.#key ??= key;
    const { store } = await this.#open();
    const stored = (await store.totals([key])).get(key) ?? 0;
    return { key, total: Math.max(stored, this.#total), online: this.#online() };
  }

  /** Coalesced by the Broadcaster: one encoded count per interval to every open socket. */
  async #emit(): Promise<void> {
    const key = this.#key;
    if (!key) return;
    const sockets = this.#openSockets();
    // Online changed or the total moved: the index hears of it (coalesced), and online thresholds are checked.
    this.#reporter.touch(key);
    if (this.#totalKnown && this.#ready) {
      void this.#ready.then((r) => r.trigger.observe(key, sockets.length, this.#total), () => {});
    }
    if (sockets.length === 0) return;
    if (!this.#totalKnown) {
      // Woken from hibernation by a close: learn the total, then send.
      try {
        await this.#knownTotal(key);
      } catch (err) {
        this.#log.warn("count not sent: total unavailable", { err });
      }
      return; // #observe touched the broadcaster; the next emit sends
    }
    const reset = this.#resetPending;
    this.#resetPending = false;
    const text = encode({ type: "count", key, total: this.#total, online: sockets.length, seq: this.#nextSeq(), ...(reset ? { reset: true as const } : {}) });
    for (const ws of sockets) {
      try {
        ws.send(text);
      } catch {
        // closed between the listing and the send
      }
    }
  }

  #nextSeq(): number {
    this.#seq++;
    if (this.#seq >= this.#seqCeiling) {
      this.#seqCeiling = this.#seq + SEQ_BLOCK;
      this.#ctx.storage.kv.put("seq_ceiling", this.#seqCeiling);
    }
    return this.#seq;
  }
}
