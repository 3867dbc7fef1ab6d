import type { Hono, MiddlewareHandler } from "hono";
import * as v from "valibot";
import { validateKey } from "../core/keys.ts";
import { boundedInt } from "../core/schemas.ts";
import { strictPathAfter } from "./params.ts";
import { jsonBody, query } from "./validate.ts";

// The admin API, only mounted when ADMIN_TOKEN is set: list keys with totals,
// set or reset a counter, delete one (which frees its place under MAX_KEYS).
// Every route wants `Authorization: Bearer <token>`.

export interface CounterRow {
  key: string;
  total: number;
  updatedAt: string;
}

export interface Admin {
  list(limit: number, offset: number): Promise<CounterRow[]>;
  /** Sets the total (0 resets); every instance's watchers get it flagged `reset`. */
  set(key: string, total: number): Promise<void>;
  /** Removes the key and its history, freeing its place under MAX_KEYS; watchers see 0, flagged `reset`. */
  delete(key: string): Promise<void>;
}

const LIST = { limit: boundedInt(1, 1000, 100), offset: boundedInt(0, 10_000_000, 0) };
const TOTAL = v.object({
  total: v.pipe(v.number("total must be a number"), v.safeInteger("total must be a whole number"), v.minValue(0, "total must be 0 or more")),
});

/** `guard` is the bearer-token check: the admin API is only mounted when ADMIN_TOKEN is set. */
export function mountAdmin(app: Hono, admin: Admin, guard: MiddlewareHandler): void {
  app.use("/admin/*", async (c, next) => {
    c.header("Cache-Control", "no-store");
    await next();
  });
  app.use("/admin/*", guard);

  app.get("/admin/counters", query(LIST), async (c) => {
    const { limit, offset } = c.req.valid("query");
    return c.json({ counters: await admin.list(limit, offset), limit, offset });
  });

  // Content-Type: application/json is required (curl -H 'Content-Type: application/json' -d '{"total":0}').
  app.put("/admin/counters/:key{.+}", jsonBody(TOTAL, '{"total": 0}'), async (c) => {
    const key = validateKey(strictPathAfter(c.req.url, "/admin/counters/"));
    const { total } = c.req.valid("json");
    await admin.set(key, total);
    return c.json({ key, total });
  });

  app.delete("/admin/counters/:key{.+}", async (c) => {
    const key = validateKey(strictPathAfter(c.req.url, "/admin/counters/"));
    await admin.delete(key);
    return c.json({ key, total: 0, deleted: true });
  });
}
