import type { DailyPoint, DayBatch, DayCounts } from "./visitors.ts";

// The small interfaces through which core/ talks to the world. Adapters in
// src/runtime and src/db implement them; core never imports a runtime or a
// library, so everything here is testable with fakes.

/** One open WebSocket, as the core sees it. Sends after close must be no-ops. */
export interface Peer {
  send(text: string): void;
  close(code: number, reason: string): void;
  /**
   * Called just before the hello, once the visit has committed (or the resume
   * token was accepted): from here on the peer receives the key's counts.
   * Adapters whose fan-out is native subscribe here (Bun topics), so a joiner
   * hears nothing before its own visit; a Durable Object keeps the numbers in
   * the socket's attachment, which survives hibernation.
   */
  greeted?(visitor: number, resume: string): void;
}

/** Committed numbers of one key: its total and, when the commit carried a day, the day's visitors and bots. */
export interface KeyCommit {
  total: number;
  visitors: number;
  bots: number;
}

/**
 * The day's visitors and bots beside the visits (core/visitors.ts). A store
 * without it counts visits only (test fakes).
 */
export interface DayStore {
  /**
   * Adds the visits (`counts`: people only) and the batch's hashes and bots in
   * one statement or transaction; returns every key of either with its total
   * and today's numbers.
   */
  commit(counts: ReadonlyMap<string, number>, batch: DayBatch): Promise<Map<string, KeyCommit>>;
  /** `day`'s numbers per key (SERVER_KEY: the server's); absent keys had none. */
  today(keys: readonly string[], day: string): Promise<Map<string, DayCounts>>;
  /** The salt of `day`: `candidate` if none was stored yet, else the stored one (every instance agrees). */
  salt(day: string, candidate: string): Promise<string>;
  /**
   * Deletes the hashes and salts of days before `today` (in batches) and daily
   * rows older than `keepFrom`; returns how many hashes went.
   */
  rollUp(today: string, keepFrom: string): Promise<number>;
  /** Daily numbers of `key` (SERVER_KEY: the server's) from `fromDay` on, oldest first; days without any are absent. */
  daily(key: string, fromDay: string): Promise<DailyPoint[]>;
  /** Hashes stored for `day` (tests: the roll-up deletes them). */
  hashCount(day: string): Promise<number>;
}

/** Durable counter storage. `increment` is one atomic statement per call. */
export interface CounterStore {
  /** Visitors per day; absent: visits only. */
  readonly day?: DayStore;
  /** Adds `n` visits per key and returns each key's new total. */
  increment(counts: ReadonlyMap<string, number>): Promise<Map<string, number>>;
  /** Current totals; absent keys are 0. */
  totals(keys: readonly string[]): Promise<Map<string, number>>;
  /** Resolves when the database answers a trivial query. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** Delivers one encoded message to every peer watching a key. */
export interface Fanout {
  publish(key: string, text: string, peers: ReadonlySet<Peer>): void;
}

export type TimerHandle = unknown;

export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

/** Keyed MAC used for resume tokens; HMAC-SHA256 in every runtime. */
export interface Signer {
  sign(message: string): string;
}

export type LogLevel = "debug" | "info" | "warn" | "error";

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

/** What the bus reports; payloads are opaque text encoded by core/cluster.ts. */
export interface BusHandlers {
  /** A committed total from any instance (the store publishes these in the increment statement). */
  onTotal(payload: string): void;
  onPresence(payload: string): void;
  /** After every (re)connect of the listening connection: resync, since messages were missed. */
  onConnect(reconnected: boolean): void;
  /** The listening connection dropped. */
  onDisconnect(): void;
}

/** Fan-out between instances through the database they share (LISTEN/NOTIFY). */
export interface Bus {
  start(handlers: BusHandlers): Promise<void>;
  publishPresence(payload: string): Promise<void>;
  readonly connected: boolean;
  readonly reconnects: number;
  close(): Promise<void>;
}

/** A webhook event waiting in the outbox (DESIGN.md, issue 7). */
export interface OutboxEvent {
  id: string;
  ruleId: string;
  key: string;
  kind: "milestone" | "online";
  /** The milestone crossed, or the online threshold. */
  value: number;
  total: number;
  online: number | null;
  createdAt: string;
  /** Delivery attempts so far, this one included. */
  attempts: number;
}

export interface Outbox {
  /**
   * Claims up to `limit` due events of the rules in `ruleIds`, locked for
   * `lockMs`. Only the caller's own rules: an instance never takes (and so
   * never gives up on) an event of a rule it does not run with.
   */
  claim(limit: number, lockMs: number, ruleIds: readonly string[]): Promise<OutboxEvent[]>;
  delivered(id: string): Promise<void>;
  /** Records a failure; `retryInMs` null marks the event dead. */
  failed(id: string, error: string, retryInMs: number | null): Promise<void>;
  /** Writes an online event if the rule is armed for the key, and disarms it. */
  fireOnline(ruleId: string, key: string, threshold: number, online: number, total: number): Promise<boolean>;
  rearm(ruleId: string, key: string): Promise<void>;
  /** How many events are pending, delivered and dead, for the dashboard. */
  summary(): Promise<{ pending: number; delivered: number; dead: number }>;
  /** The newest dead events, for the dashboard. */
  recentDead(limit: number): Promise<Array<{ id: string; key: string; attempts: number; lastError: string | null }>>;
}

/** Outbound HTTP: POST and consume the body; resolves with the status, rejects on network errors and timeouts. */
export interface HttpPoster {
  post(url: string, body: string, headers: Record<string, string>): Promise<number>;
  close(): Promise<void>;
}
