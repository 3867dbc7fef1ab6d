// Online counts heard from the other instances (DESIGN.md §5), and the wire
// format they travel in. Each instance publishes its own per-key socket
// counts: deltas as they change, and a full snapshot as its heartbeat.
//
// A snapshot bigger than one NOTIFY goes out in chunks. It replaces the
// sender's counts as a whole: each chunk sets the counts it carries, and only
// the last one (which says how many chunks there were) zeroes the keys the
// snapshot did not mention, so no key dips to 0 on the way. A sender sends
// one message at a time (cluster.ts), and the NOTIFYs of one sender arrive in
// commit order, so a snapshot's chunks are never interleaved with its deltas.

export type Pairs = Array<[string, number]>;

/**
 * i = instance, o = [key, n] pairs; a delta has nothing else. A snapshot's
 * chunks carry s = snapshot id, the last one e = its number of chunks; the
 * first one q = please send yours, and r = reset for instances from before
 * snapshots had ids (they zero every key on it, as they always did).
 */
export interface PresenceMessage {
  i: string;
  s?: number;
  e?: number;
  r?: 1;
  q?: 1;
  o?: Pairs;
}

/** NOTIFY payloads are limited to 8000 bytes; stay well under. */
const MAX_PAYLOAD_CHARS = 7000;

/** Splits pairs so each payload fits one NOTIFY; always at least one (maybe empty) chunk. */
export function chunks(pairs: Pairs): Pairs[] {
  const out: Pairs[] = [[]];
  let size = 0;
  for (const pair of pairs) {
    const len = pair[0].length * 3 + 16; // UTF-8 bytes, upper bound
    if (size + len > MAX_PAYLOAD_CHARS && out[out.length - 1]!.length > 0) {
      out.push([]);
      size = 0;
    }
    out[out.length - 1]!.push(pair);
    size += len;
  }
  return out;
}

/** A message as received, or null when it is not one. */
export function parsePresence(payload: string): PresenceMessage | null {
  let msg: PresenceMessage;
  try {
    msg = JSON.parse(payload) as PresenceMessage;
  } catch {
    return null;
  }
  if (typeof msg !== "object" || msg === null || typeof msg.i !== "string") return null;
  return msg;
}

interface Remote {
  seen: number;
  counts: Map<string, number>;
  /** The snapshot being received: its id, the chunks and keys seen so far. */
  snapshot: { id: number; chunks: number; keys: Set<string> } | null;
}

/** The other instances' counts per key, summed; `onChange` hears every new sum. */
export class RemotePresence {
  readonly #remotes = new Map<string, Remote>();
  /** Sum of other instances' sockets per key. */
  readonly #online = new Map<string, number>();
  readonly #onChange: (key: string, sum: number) => void;

  constructor(onChange: (key: string, sum: number) => void) {
    this.#onChange = onChange;
  }

  /** Instances heard from and not expired. */
  get instances(): number {
    return this.#remotes.size;
  }

  receive(msg: PresenceMessage, now: number): void {
    let remote = this.#remotes.get(msg.i);
    if (!remote) {
      remote = { seen: 0, counts: new Map(), snapshot: null };
      this.#remotes.set(msg.i, remote);
    }
    remote.seen = now;
    const pairs = (Array.isArray(msg.o) ? msg.o : []).filter((p) => Array.isArray(p) && typeof p[0] === "string" && typeof p[1] === "number");
    if (typeof msg.s === "number") return this.#chunk(remote, msg.s, msg.e, pairs);
    if (msg.r) this.#zeroAll(remote); // a sender without snapshot ids
    for (const [key, n] of pairs) this.#set(remote, key, n);
  }

  /** Forgets instances not heard from since `cutoff`; returns how many keys each had. */
  expire(cutoff: number): Array<{ instance: string; keys: number }> {
    const gone: Array<{ instance: string; keys: number }> = [];
    for (const [id, remote] of this.#remotes) {
      if (remote.seen >= cutoff) continue;
      gone.push({ instance: id, keys: remote.counts.size });
      this.#zeroAll(remote);
      this.#remotes.delete(id);
    }
    return gone;
  }

  /** One chunk of a snapshot: set what it carries; on the last of a complete snapshot, zero every key it did not mention. */
  #chunk(remote: Remote, id: number, last: number | undefined, pairs: Pairs): void {
    if (remote.snapshot?.id !== id) remote.snapshot = { id, chunks: 0, keys: new Set() };
    const snap = remote.snapshot;
    snap.chunks++;
    for (const [key, n] of pairs) {
      snap.keys.add(key);
      this.#set(remote, key, n);
    }
    if (last === undefined) return;
    remote.snapshot = null;
    // A chunk went missing (a reconnect): keep the counts; the next whole snapshot settles them.
    if (snap.chunks !== last) return;
    for (const key of [...remote.counts.keys()]) if (!snap.keys.has(key)) this.#set(remote, key, 0);
  }

  #zeroAll(remote: Remote): void {
    for (const key of [...remote.counts.keys()]) this.#set(remote, key, 0);
  }

  #set(remote: Remote, key: string, n: number): void {
    const before = remote.counts.get(key) ?? 0;
    if (before === n) return;
    if (n === 0) remote.counts.delete(key);
    else remote.counts.set(key, n);
    const sum = (this.#online.get(key) ?? 0) + n - before;
    if (sum <= 0) this.#online.delete(key);
    else this.#online.set(key, sum);
    this.#onChange(key, Math.max(0, sum));
  }
}
