// Socket caps (DESIGN.md §7): MAX_SOCKETS overall, kept below the process's
// open-file limit so the database, logs and health checks always have
// descriptors left, and MAX_SOCKETS_PER_IP per client address. `check` runs
// before the upgrade (so a refusal is a clean 503); `take` runs when the
// socket opens and checks again, since upgrades in flight can race past
// `check`.

export type CapRefusal = "global" | "per_ip";

export class SocketCaps {
  readonly #perAddress = new Map<string, number>();
  readonly maxSockets: number;
  readonly maxPerAddress: number;
  #open = 0;
  /** Upgrades refused at a cap, for /metrics. */
  refusals = 0;

  constructor(maxSockets: number, maxPerAddress: number) {
    this.maxSockets = maxSockets;
    this.maxPerAddress = maxPerAddress;
  }

  get open(): number {
    return this.#open;
  }

  /** Which cap a new socket from `address` would exceed, or null; changes nothing. */
  check(address: string): CapRefusal | null {
    if (this.#open >= this.maxSockets) return "global";
    if ((this.#perAddress.get(address) ?? 0) >= this.maxPerAddress) return "per_ip";
    return null;
  }

  /** Takes a slot for a socket from `address`; false (and counted as a refusal) at a cap. Pair with `release`. */
  take(address: string): boolean {
    if (this.check(address) !== null) {
      this.refusals++;
      return false;
    }
    this.#open++;
    this.#perAddress.set(address, (this.#perAddress.get(address) ?? 0) + 1);
    return true;
  }

  release(address: string): void {
    this.#open--;
    const n = (this.#perAddress.get(address) ?? 1) - 1;
    if (n <= 0) this.#perAddress.delete(address);
    else this.#perAddress.set(address, n);
  }
}
