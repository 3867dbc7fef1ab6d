import type { Peer } from "./ports.ts";

/** Everything this instance knows about one key. */
export class Room {
  readonly key: string;
  readonly peers = new Set<Peer>();
  /**
   * The peers that have had their hello: count messages go only to these, so
   * a joiner hears nothing before its own visit has committed (DESIGN.md §4).
   * Always a subset of `peers`; online counts `peers`.
   */
  readonly watchers = new Set<Peer>();
  /** Highest committed total seen; never decreases (a client never sees a total go down). */
  total = 0;
  totalKnown = false;
  /** Broadcast sequence; only grows while the room exists. */
  seq = 0;
  /** When the oldest committed-but-not-yet-broadcast total arrived (broadcast latency metric). */
  unsentSince: number | null = null;
  /** An administrator set the total; the next count is flagged `reset`. */
  resetPending = false;
  /** Sockets other instances hold for this key (multi-instance presence). */
  remoteOnline = 0;
  /** Shared load of the total, so many resumes cost one query. */
  loading: Promise<void> | null = null;

  constructor(key: string) {
    this.key = key;
  }

  get online(): number {
    return this.peers.size + this.remoteOnline;
  }

  /** Returns true when the total moved forward. */
  observeTotal(total: number): boolean {
    const known = this.totalKnown;
    this.totalKnown = true;
    if (total > this.total) {
      this.total = total;
      return true;
    }
    return !known;
  }
}

export class Rooms {
  readonly #rooms = new Map<string, Room>();

  get(key: string): Room | undefined {
    return this.#rooms.get(key);
  }

  getOrCreate(key: string): Room {
    let room = this.#rooms.get(key);
    if (!room) {
      room = new Room(key);
      this.#rooms.set(key, room);
    }
    return room;
  }

  /** Forgets a room nobody here watches, so memory follows live keys only. */
  release(room: Room): void {
    if (room.peers.size === 0 && room.remoteOnline === 0 && this.#rooms.get(room.key) === room) {
      this.#rooms.delete(room.key);
    }
  }

  get size(): number {
    return this.#rooms.size;
  }

  values(): IterableIterator<Room> {
    return this.#rooms.values();
  }

  /** Open sockets on this instance, over all keys. */
  get sockets(): number {
    let n = 0;
    for (const room of this.#rooms.values()) n += room.peers.size;
    return n;
  }
}
