import type { Hono } from "hono";
import { HeadcountError } from "../core/errors.ts";
import { validateKey } from "../core/keys.ts";
import { daysBefore, utcDay, type DailyPoint } from "../core/visitors.ts";
import type { Insights } from "./insights.ts";
import { strictQuery } from "./params.ts";

// GET /api/daily?key=<key>&days=30 -> {key, days:[{day, visits, visitors, bots}]}: one
// entry per UTC day, oldest first, today last, days without any as zeros. Without
// `key`, the whole server's (key null; its visitors are distinct over every key).
// Public and CORS-readable like /api/counters (routes/embed.ts).

export const MAX_DAILY_DAYS = 365;

/** `days` as asked: 30 when absent, else a whole number in 1..365 (else a 400 saying so). */
export function parseDays(raw: string | undefined): number {
  if (raw === undefined) return 30;
  const n = /^\d{1,3}$/.test(raw) ? Number(raw) : NaN;
  if (!(n >= 1 && n <= MAX_DAILY_DAYS)) throw new HeadcountError(400, "bad_request", `days must be a whole number from 1 to ${MAX_DAILY_DAYS}`);
  return n;
}

/** Every day from `days - 1` days ago to `today`, with the stored numbers where there are some. */
export function fillDays(points: readonly DailyPoint[], today: string, days: number): DailyPoint[] {
  const byDay = new Map(points.map((p) => [p.day, p]));
  return Array.from({ length: days }, (_, i) => {
    const day = daysBefore(today, days - 1 - i);
    const p = byDay.get(day);
    return { day, visits: p?.visits ?? 0, visitors: p?.visitors ?? 0, bots: p?.bots ?? 0 };
  });
}

export function mountDaily(app: Hono, insights: Insights, now: () => number, maxAgeS: number): void {
  app.get("/api/daily", async (c) => {
    const raw = strictQuery(c.req.url, "key");
    const key = raw === undefined ? null : validateKey(raw);
    const days = parseDays(strictQuery(c.req.url, "days"));
    const today = utcDay(now());
    const points = await insights.daily(key, daysBefore(today, days - 1));
    c.header("Cache-Control", `public, max-age=${maxAgeS}`);
    return c.json({ key, days: fillDays(points, today, days) });
  });
}
