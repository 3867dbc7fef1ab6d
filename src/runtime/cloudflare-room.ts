// One Durable Object per counter key (Workers, DESIGN.md §5): it hosts core's
// room for its key (room.ts: admission, budget, totals, broadcast) and owns
// the key's sockets through the WebSocket Hibernation API.
// https://developers.cloudflare.com/durable-objects/best-practices/websockets/
//
// Hibernation: between events the object may be evicted while its sockets
// stay open. What a socket needs afterwards (its key and that it had its
// hello) is in its attachment; a woken object restores every socket into the
// room, watching but not counted again, and relearns its total from storage.
// The Hibernation API fires no open event (nor does hono's adapter), so a
// visit is counted where the socket is accepted.
import type * as CF from "@cloudflare/workers-types/index.ts";
import { Broadcaster } from "../core/broadcaster.ts";
import { parseConfig, type Config } from "../core/config.ts";
import { HeadcountError } from "../core/errors.ts";
import { validateKey } from "../core/keys.ts";
import { createLogger } from "../core/logger.ts";
import type { Logger, Peer } from "../core/ports.ts";
import { CloseCode, PONG } from "../core/protocol.ts";
import { Room, type RoomHost, type Session } from "../core/room.ts";
import { utcDay, type Who } from "../core/visitors.ts";
import { SocketCaps } from "../core/socket-caps.ts";
import { EventStreams } from "../routes/event-stream.ts";
import { systemClock } from "./clock.ts";
import { varsOf, type WorkerEnv } from "./cloudflare-env.ts";
import { DurablePeer, PING_FRAME, SEQ_BLOCK, type SocketState } from "./cloudflare-peer.ts";
import { daySalt, IndexReporter, KeyRegistration } from "./cloudflare-report.ts";
import { pruneOwnHistory } from "./cloudflare-retention.ts";
import { answerRoomApi, type RoomApiDeps } from "./cloudflare-room-api.ts";
import { whoOf } from "./cloudflare-who.ts";
import { deliverWebhooks, rollUpDays, hasStorage, openRoomResources, type RoomResources } from "./cloudflare-room-store.ts";

declare const WebSocketPair: typeof CF.WebSocketPair;
declare const WebSocketRequestResponsePair: typeof CF.WebSocketRequestResponsePair;

export class CounterRoom {
  readonly #ctx: CF.DurableObjectState;
  readonly #env: WorkerEnv;
  readonly #config: Config;
  readonly #log: Logger;
  readonly #sessions = new Map<CF.WebSocket, { session: Session; address: string }>();
  readonly #caps: SocketCaps;
  readonly #broadcaster: Broadcaster;
  readonly #reporter: IndexReporter;
  /**
   * Event streams (GET /sse where upgrades are blocked). A stream is a request
   * in progress, not a hibernatable socket: while one is open the object stays
   * in memory and is billed for its duration (README "Cloudflare Workers").
   */
  readonly #streams: EventStreams;
  #resources: Promise<RoomResources> | null = null;
  /** Set once the resources are open: tokens are made and checked only after that (#ready). */
  #signer: RoomResources["signer"] | null = null;
  readonly #registration: KeyRegistration;
  #room: Room | null = null;
  readonly #api: RoomApiDeps;
  #seqCeiling: number;
  /** Counts wake-ups, so an alarm run knows whether an event was written while it ran. */
  #wakes = 0;

  constructor(ctx: CF.DurableObjectState, env: WorkerEnv) {
    this.#ctx = ctx;
    this.#env = env;
    this.#config = parseConfig(varsOf(env));
    this.#log = createLogger(this.#config.logLevel, (line) => console.log(line), { runtime: "worker", room: ctx.id.toString().slice(0, 12) });
    // Per object, that is per key: MAX_SOCKETS (unset: no cap of ours) and MAX_SOCKETS_PER_IP.
    this.#caps = new SocketCaps(this.#config.maxSockets ?? Number.MAX_SAFE_INTEGER, this.#config.maxSocketsPerIp);
    this.#streams = new EventStreams({ keepaliveMs: this.#config.sseKeepaliveMs, maxBufferedBytes: this.#config.limits.maxBufferedBytes });
    this.#broadcaster = new Broadcaster(this.#config.broadcastIntervalMs, systemClock, () => this.#room?.emit());
    this.#registration = new KeyRegistration(env.INDEX);
    this.#reporter = new IndexReporter(env.INDEX, this.#log, () => {
      const room = this.#room;
      // Today's visitors and bots as the room knows them (the index keeps the highest it hears per day).
      return room && this.#registration.reporting ? { key: room.key, total: room.totalKnown ? room.total : null, online: room.online, today: { day: utcDay(Date.now()), visitors: room.visitors, bots: room.botsToday } } : null;
    });
    this.#api = { open: () => this.#open(), room: (k) => this.#roomFor(k), ready: (k) => this.#ready(k), registration: this.#registration, reporter: this.#reporter };
    // Idle pings are answered by the runtime itself and never wake the object.
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair(PING_FRAME, PONG));
    this.#seqCeiling = Number(ctx.storage.kv.get<number>("seq_ceiling") ?? 0);
    for (const ws of ctx.getWebSockets()) {
      const state = ws.deserializeAttachment() as SocketState | null;
      if (!state) continue;
      // Evicted before its visit committed: its fate is unknown, so the client reconnects rather than wait forever.
      const bot = state.bot === true;
      // A bot's socket keeps visitor 0; its `bot` flag is written with its hello, so without it visitor 0 means no hello yet.
      if (state.visitor === 0 && !bot) new DurablePeer(ws, state.key).close(CloseCode.tryAgainLater, "try again");
      else this.#bind(ws, state.key, ctx.getTags(ws)[0] ?? "unknown", (room, peer) => room.restore(peer, bot, state.visitor), bot);
    }
    // Migrations (and the resume secret) before any event, for an object that has counted; a failure
    // (PostgreSQL down) is retried by the next event. A key nobody visited never gets here: the Worker
    // answers its reads from the index (cloudflare-stubs.ts), so no object and no storage are made.
    if (ctx.getWebSockets().length > 0 || hasStorage(ctx.storage, env.HYPERDRIVE)) void ctx.blockConcurrencyWhile(() => this.#open().then(() => undefined, () => undefined));
  }

  #open(): Promise<RoomResources> {
    this.#resources ??= openRoomResources(this.#ctx.storage, this.#env.HYPERDRIVE, this.#config, this.#log, () => this.#wake(), (day) =>
      daySalt(this.#env.INDEX, day), (counts, batch) => this.#reporter.addCommit(counts, batch),
    ).catch((err: unknown) => {
      this.#resources = null;
      this.#log.warn("store unavailable", { err });
      throw err;
    });
    return this.#resources;
  }

  /** The room for the object's one key; every Durable Object is named after it. */
  #roomFor(key: string): Room {
    if (this.#room) return this.#room;
    const host: RoomHost = {
      clock: systemClock,
      log: this.#log,
      options: { resumeTtlS: this.#config.resumeTtlS, messageBurst: this.#config.messageRate.burst, messagePerSec: this.#config.messageRate.perSec },
      // Admission and snapshots open the resources first, so the signer is there when a token is made or checked.
      signer: { sign: (m) => this.#signerNow().sign(m) },
      commit: async (k, who) => (await this.#open()).batcher.add(k, who),
      loadTotal: async (k) => ((await (await this.#open()).store.totals([k])).get(k) ?? 0),
      loadToday: async (k, day) => (await (await this.#open()).store.day.today([k], day)).get(k),
      schedule: () => this.#broadcaster.touch(key),
      publish: (room, text) => {
        if (room.seq >= this.#seqCeiling) this.#ctx.storage.kv.put("seq_ceiling", (this.#seqCeiling = room.seq + SEQ_BLOCK));
        for (const peer of room.watchers) peer.send(text);
      },
      socketsChanged: () => this.#reporter.touch(),
      updated: (room) => {
        this.#reporter.touch();
        void this.#resources?.then((r) => r.trigger.observe(room.key, room.online, room.total), () => {});
      },
    };
    this.#room = new Room(key, host);
    this.#room.seq = this.#seqCeiling;
    return this.#room;
  }

  #signerNow(): RoomResources["signer"] {
    if (!this.#signer) throw new Error("resume secret not loaded");
    return this.#signer;
  }

  #bind(ws: CF.WebSocket, key: string, address: string, join: (room: Room, peer: Peer) => Session, bot = false): void {
    this.#caps.take(address);
    this.#sessions.set(ws, { session: join(this.#roomFor(key), new DurablePeer(ws, key, bot)), address });
  }

  async fetch(request: Request): Promise<Response> {
    const url = new URL(request.url);
    const key = () => validateKey(url.searchParams.get("key"));
    const address = () => url.searchParams.get("address") ?? "unknown";
    try {
      switch (url.pathname) {
        case "/ws":
          return await this.#accept(key(), url.searchParams.get("resume"), address(), whoOf(url, request));
        case "/sse":
          return await this.#acceptStream(key(), url.searchParams.get("resume"), address(), whoOf(url, request), request.signal);
        case "/count":
          if (request.method === "POST") return Response.json(await this.#count(key(), whoOf(url, request)));
      }
      return (await answerRoomApi(url, request.method, key, this.#api)) ?? Response.json({ error: "not_found" }, { status: 404 });
    } catch (err) {
      if (err instanceof HeadcountError) return Response.json({ error: err.code, message: err.message }, { status: err.status });
      const message = err instanceof Error ? err.message : String(err);
      return Response.json({ error: "unavailable", message: `database unavailable: ${message}` }, { status: 503 });
    }
  }

  /** Before the object's first write: the key is known to the index, so reads of unknown keys can skip objects. */
  async #ready(key: string): Promise<void> {
    await this.#registration.ensure(key, () => !this.#resources && !hasStorage(this.#ctx.storage, this.#env.HYPERDRIVE));
    this.#signer ??= (await this.#open()).signer;
  }

  /** The 503 for a socket or stream past MAX_SOCKETS or MAX_SOCKETS_PER_IP, or null. */
  #capRefusal(address: string): Response | null {
    const full = this.#caps.check(address);
    if (!full) return null;
    const message = full === "global" ? "server is at its socket limit" : "too many sockets from your address";
    return Response.json({ error: "too_many_sockets", message }, { status: 503, headers: { "Retry-After": "5" } });
  }

  async #accept(key: string, resume: string | null, address: string, who: Who): Promise<Response> {
    const refused = this.#capRefusal(address);
    if (refused) return refused;
    await this.#ready(key);
    const [client, server] = Object.values(new WebSocketPair()) as [CF.WebSocket, CF.WebSocket];
    // The address tag lives with the socket in the runtime's memory only (never in storage).
    this.#ctx.acceptWebSocket(server, [address.slice(0, 256)]);
    server.serializeAttachment({ key, visitor: 0 } satisfies SocketState);
    this.#bind(server, key, address, (room, peer) => room.admit(peer, resume, who), who.bot);
    // Workers' ResponseInit takes the client end; the DOM typing of Response does not know it.
    return new Response(null, { status: 101, webSocket: client } as ResponseInit);
  }

  /** An event stream: the same caps, room and hello as a socket; it leaves when either side ends it. */
  async #acceptStream(key: string, resume: string | null, address: string, who: Who, signal: AbortSignal): Promise<Response> {
    const refused = this.#capRefusal(address);
    if (refused) return refused;
    await this.#ready(key);
    return this.#streams.open((peer) => {
      this.#caps.take(address);
      const session = this.#roomFor(key).admit(peer, resume, who);
      let left = false;
      return {
        key,
        message: () => {},
        close: () => {
          if (left) return;
          left = true;
          session.close();
          this.#caps.release(address);
        },
      };
    }, signal);
  }

  /** A visit without a connection (the pixel): committed, shown to the watchers, never online. */
  async #count(key: string, who: Who): Promise<{ total: number }> {
    await this.#ready(key);
    const committed = await (await this.#open()).batcher.add(key, who);
    const room = this.#roomFor(key);
    if (committed.today) room.observeToday(committed.today);
    room.observeTotal(committed.total);
    return { total: committed.total };
  }

  webSocketMessage(ws: CF.WebSocket, message: string | ArrayBuffer): void {
    const bytes = typeof message === "string" ? new TextEncoder().encode(message).byteLength : message.byteLength;
    this.#sessions.get(ws)?.session.message(typeof message === "string" ? message : null, bytes);
  }

  webSocketClose(ws: CF.WebSocket, code: number): void {
    // Complete the closing handshake (a no-op where the runtime already replied); 1005/1006/1015 are never sent.
    const echo = code >= 1000 && code < 5000 && ![1004, 1005, 1006, 1015].includes(code) ? code : 1000;
    new DurablePeer(ws, "").close(echo, "closing");
    this.#left(ws);
  }

  webSocketError(ws: CF.WebSocket): void {
    this.#left(ws);
  }

  #left(ws: CF.WebSocket): void {
    const bound = this.#sessions.get(ws);
    if (!bound) return;
    this.#sessions.delete(ws);
    bound.session.close();
    this.#caps.release(bound.address);
  }

  // --- webhooks: delivered from the object's alarm, which survives eviction ---

  /** An event was written: the alarm runs as soon as this event (and its writes) are done. */
  #wake(): void {
    this.#wakes++;
    void this.#ctx.storage.setAlarm(Date.now());
  }

  async alarm(): Promise<void> {
    const wakes = this.#wakes;
    const resources = await this.#open();
    // After midnight UTC (set at a day's first commit): the days before lose their hashes even if nobody visits.
    await rollUpDays(resources.store, this.#config, this.#log);
    if (!this.#env.HYPERDRIVE) await pruneOwnHistory(resources.store, this.#config.limits.historyRetentionDays); // and its history
    const next = await deliverWebhooks(this.#config.webhooks, resources.store, this.#ctx.storage, this.#log, () => this.#wakes !== wakes);
    if (next === null) await this.#ctx.storage.deleteAlarm();
    else await this.#ctx.storage.setAlarm(Math.max(next, Date.now()));
  }
}
