import type { Hono, MiddlewareHandler } from "hono";
import { HeadcountError } from "../core/errors.ts";
import { validateKey } from "../core/keys.ts";
import { strictPathAfter } from "./params.ts";

// The admin API, only mounted when ADMIN_TOKEN is set: list keys with totals,
// set or reset a counter. Every route wants `Authorization: Bearer <token>`.

export interface CounterRow {
  key: string;
  total: number;
  updatedAt: string;
}

export interface Admin {
  list(limit: number, offset: number): Promise<CounterRow[]>;
  /** Sets the total (0 resets); every instance's watchers get it flagged `reset`. */
  set(key: string, total: number): Promise<void>;
}

const MAX_TOTAL = Number.MAX_SAFE_INTEGER;

function whole(raw: string | undefined, fallback: number, max: number, name: string): number {
  if (raw === undefined || raw === "") return fallback;
  if (!/^\d{1,16}$/.test(raw) || Number(raw) > max) throw new HeadcountError(400, "bad_request", `${name} must be a whole number up to ${max}`);
  return Number(raw);
}

/** `guard` is the bearer-token check: the admin API is only mounted when ADMIN_TOKEN is set. */
export function mountAdmin(app: Hono, admin: Admin, guard: MiddlewareHandler): void {
  app.use("/admin/*", async (c, next) => {
    c.header("Cache-Control", "no-store");
    await next();
  });
  app.use("/admin/*", guard);

  app.get("/admin/counters", async (c) => {
    const limit = whole(c.req.query("limit"), 100, 1000, "limit");
    const offset = whole(c.req.query("offset"), 0, 10_000_000, "offset");
    return c.json({ counters: await admin.list(limit, offset), limit, offset });
  });

  app.put("/admin/counters/:key{.+}", async (c) => {
    const key = validateKey(strictPathAfter(c.req.url, "/admin/counters/"));
    let body: unknown;
    try {
      body = await c.req.json();
    } catch {
      throw new HeadcountError(400, "bad_request", 'body must be JSON such as {"total": 0}');
    }
    const total = (body as { total?: unknown } | null)?.total;
    if (typeof total !== "number" || !Number.isSafeInteger(total) || total < 0 || total > MAX_TOTAL) {
      throw new HeadcountError(400, "bad_request", "total must be a whole number of 0 or more");
    }
    await admin.set(key, total);
    return c.json({ key, total });
  });

  app.delete("/admin/counters/:key{.+}", async (c) => {
    const key = validateKey(strictPathAfter(c.req.url, "/admin/counters/"));
    await admin.set(key, 0);
    return c.json({ key, total: 0 });
  });
}
