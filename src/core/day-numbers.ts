import type { Clock } from "./ports.ts";
import { utcDay, type DayCounts } from "./visitors.ts";

// What a room knows of its key's day (issue 13): the latest day's visitors
// and bots, from its commits, other instances or a load from the store. A
// later day replaces an earlier one; within a day the numbers only grow; once
// the day is over they read as nothing until today's are known.

/** A key's numbers for one day, as a room shows them. */
export interface Today {
  day: string;
  visitors: number;
  bots: number;
}

export class DayNumbers {
  readonly #clock: Clock;
  readonly #load: ((day: string) => Promise<DayCounts | undefined>) | undefined;
  #known: Today | null = null;
  #loading: Promise<void> | null = null;

  constructor(clock: Clock, load: ((day: string) => Promise<DayCounts | undefined>) | undefined) {
    this.#clock = clock;
    this.#load = load;
  }

  /** Today's numbers, or null when this room knows none for today. */
  current(): Today | null {
    const t = this.#known;
    return t && t.day === utcDay(this.#clock.now()) ? t : null;
  }

  /** Takes numbers from anywhere; true when they changed what is shown. */
  observe(t: Today): boolean {
    const cur = this.#known;
    if (cur && (t.day < cur.day || (t.day === cur.day && t.visitors <= cur.visitors && t.bots <= cur.bots))) return false;
    this.#known = cur && cur.day === t.day ? { day: t.day, visitors: Math.max(cur.visitors, t.visitors), bots: Math.max(cur.bots, t.bots) } : { ...t };
    return true;
  }

  /** Loads today's numbers when none are known (one load shared by everyone who asks). */
  known(): Promise<void> {
    const load = this.#load;
    const day = utcDay(this.#clock.now());
    if (!load || this.#known?.day === day) return Promise.resolve();
    this.#loading ??= load(day).then(
      (t) => {
        this.#loading = null;
        this.observe({ day, visitors: t?.visitors ?? 0, bots: t?.bots ?? 0 });
      },
      (err: unknown) => {
        this.#loading = null;
        throw err;
      },
    );
    return this.#loading;
  }
}
