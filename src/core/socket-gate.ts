// Socket caps (DESIGN.md §7): MAX_SOCKETS overall, kept below the process's
// open-file limit so the database, logs and health checks always have
// descriptors left, and MAX_SOCKETS_PER_IP per client address. `check` runs
// before the upgrade (so a refusal is a clean 503); `acquire` runs when the
// socket opens and re-checks, since upgrades in flight can race past `check`.

export type GateRefusal = "global" | "per_ip";

export class SocketGate {
  readonly #perIp = new Map<string, number>();
  readonly maxSockets: number;
  readonly maxPerIp: number;
  #open = 0;
  refusals = 0;

  constructor(maxSockets: number, maxPerIp: number) {
    this.maxSockets = maxSockets;
    this.maxPerIp = maxPerIp;
  }

  get open(): number {
    return this.#open;
  }

  check(address: string): GateRefusal | null {
    if (this.#open >= this.maxSockets) return "global";
    if ((this.#perIp.get(address) ?? 0) >= this.maxPerIp) return "per_ip";
    return null;
  }

  /** Returns null when the socket may stay; the caller must `release` it later. */
  acquire(address: string): GateRefusal | null {
    const refusal = this.check(address);
    if (refusal) {
      this.refusals++;
      return refusal;
    }
    this.#open++;
    this.#perIp.set(address, (this.#perIp.get(address) ?? 0) + 1);
    return null;
  }

  release(address: string): void {
    this.#open--;
    const n = (this.#perIp.get(address) ?? 1) - 1;
    if (n <= 0) this.#perIp.delete(address);
    else this.#perIp.set(address, n);
  }
}

/** Addresses are kept in memory only and never logged whole: IPv4 keeps 3 octets, IPv6 the first 3 groups. */
export function maskAddress(address: string): string {
  if (address.includes(".") && !address.includes(":")) return address.replace(/\.\d+$/, ".x");
  const v4mapped = /^::ffff:(\d+\.\d+\.\d+)\.\d+$/i.exec(address);
  if (v4mapped) return `${v4mapped[1]}.x`;
  // Expand "::" first: "2001::1234" split as it is would keep every group.
  const [left = "", right] = address.replace(/%.*$/, "").split("::");
  const head = left ? left.split(":") : [];
  const tail = right ? right.split(":") : [];
  const groups = right === undefined ? head : [...head, ...Array<string>(Math.max(0, 8 - head.length - tail.length)).fill("0"), ...tail];
  return groups.slice(0, 3).join(":") + ":…";
}
