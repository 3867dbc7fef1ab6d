// Moving a headcount's data between stores (`npm run db:copy`): counters
// (totals and updated_at), per-minute history, the daily visits, visitors and
// bots (not the day's visitor hashes or salts: those never leave the database
// they were made in, README "Privacy"), and settings (the resume
// secret, so resume tokens stay valid), page by page in key order, so a
// million keys never sit in memory at once. Each page is its own
// transaction on the target; a copy that stopped half-way is finished by
// running it again with --force.
//
// Into a target that already has counters only with `force`, and then by
// replacement: a key (or key and minute, or setting) the source has takes
// the source's value; everything else on the target stays as it was.

export interface CounterRow {
  key: string;
  total: number;
  /** Epoch ms. */
  updatedAt: number;
}

export interface HistoryRow {
  key: string;
  /** Start of the minute, epoch ms. */
  minute: number;
  visits: number;
}

export interface DailyRow {
  /** "" is the server's own row. */
  key: string;
  /** UTC day, YYYY-MM-DD. */
  day: string;
  visits: number;
  visitors: number;
  bots: number;
}

export interface SettingRow {
  name: string;
  value: string;
}

/** Where rows are read from; pages are in key (then minute) order, after the given position. */
export interface CopySource {
  readonly label: string;
  counters(after: string | null, limit: number): Promise<CounterRow[]>;
  history(after: { key: string; minute: number } | null, limit: number): Promise<HistoryRow[]>;
  daily(after: { key: string; day: string } | null, limit: number): Promise<DailyRow[]>;
  settings(): Promise<SettingRow[]>;
  close(): Promise<void>;
}

/** Where rows are written; each put replaces what the target has for the same key. */
export interface CopyTarget {
  readonly label: string;
  countCounters(): Promise<number>;
  putCounters(rows: readonly CounterRow[]): Promise<void>;
  putHistory(rows: readonly HistoryRow[]): Promise<void>;
  putDaily(rows: readonly DailyRow[]): Promise<void>;
  putSettings(rows: readonly SettingRow[]): Promise<void>;
  close(): Promise<void>;
}

export interface CopyOptions {
  /** Copy into a target that already has counters (replacing what the source also has). */
  force?: boolean;
  /** Rows per page and per target transaction. */
  batch?: number;
}

export interface CopyResult {
  counters: number;
  history: number;
  daily: number;
  settings: number;
}

/** The target already has counters and `force` was not given; nothing was written. */
export class CopyRefusedError extends Error {
  constructor(target: string, counters: number) {
    super(`${target} already has ${counters} counters; pass --force to replace the ones the source also has (the others are kept)`);
    this.name = "CopyRefusedError";
  }
}

/** Settings that belong to one database and are never copied. */
const LOCAL_SETTINGS = new Set(["write_probe"]);

export async function copyStore(from: CopySource, to: CopyTarget, opts: CopyOptions = {}): Promise<CopyResult> {
  const batch = opts.batch ?? 1000;
  const existing = await to.countCounters();
  if (existing > 0 && !opts.force) throw new CopyRefusedError(to.label, existing);
  const result: CopyResult = { counters: 0, history: 0, daily: 0, settings: 0 };

  const settings = (await from.settings()).filter((s) => !LOCAL_SETTINGS.has(s.name));
  await to.putSettings(settings);
  result.settings = settings.length;

  for (let after: string | null = null; ; ) {
    const rows = await from.counters(after, batch);
    if (rows.length === 0) break;
    await to.putCounters(rows);
    result.counters += rows.length;
    after = rows.at(-1)!.key;
  }

  for (let after: { key: string; minute: number } | null = null; ; ) {
    const rows = await from.history(after, batch);
    if (rows.length === 0) break;
    await to.putHistory(rows);
    result.history += rows.length;
    const last = rows.at(-1)!;
    after = { key: last.key, minute: last.minute };
  }

  for (let after: { key: string; day: string } | null = null; ; ) {
    const rows = await from.daily(after, batch);
    if (rows.length === 0) break;
    await to.putDaily(rows);
    result.daily += rows.length;
    const last = rows.at(-1)!;
    after = { key: last.key, day: last.day };
  }
  return result;
}
