import type * as CF from "@cloudflare/workers-types/index.ts";
import { KeyLimitError } from "../core/key-limit.ts";

// MAX_KEYS on Workers (README "Keys, history and resume tokens"). No key's
// object knows how many keys there are; the index object does: a key's object
// registers its key there before its first write (cloudflare-room.ts #ready),
// so the index's `keys` table sees every new key. Its rows are counted at most
// once a minute (a room's report may add a key from before the index existed)
// and counted up as keys register; at the cap a new key is refused.

/** How stale the count may get. */
const RECOUNT_MS = 60_000;

export class IndexKeys {
  readonly #sql: CF.SqlStorage;
  readonly #max: number;
  /** Rows in `keys` as counted at `at`, plus registrations since. */
  #count: { n: number; at: number } | null = null;

  constructor(sql: CF.SqlStorage, max: number) {
    this.#sql = sql;
    this.#max = max;
  }

  /** Registers `key` with `insert` unless `known`; throws KeyLimitError (403) for a new key at the cap. */
  async register(key: string, known: (key: string) => Promise<boolean>, insert: () => void): Promise<void> {
    if (await known(key)) return;
    const now = Date.now();
    if (this.#count === null || now - this.#count.at > RECOUNT_MS) {
      const row = this.#sql.exec<{ n: number }>("select count(*) as n from keys").toArray()[0];
      this.#count = { n: Number(row?.n ?? 0), at: now };
    }
    if (this.#count.n >= this.#max) throw new KeyLimitError(this.#max);
    insert();
    this.#count.n++;
  }

  /** An administrator deleted the key: its row goes, and its place is free. */
  forget(key: string): void {
    this.#sql.exec("delete from keys where key = ?", key);
    this.#count = null;
  }
}
