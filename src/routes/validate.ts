import { vValidator } from "@hono/valibot-validator";
import * as v from "valibot";
import type { TextSchema } from "../core/schemas.ts";

// Request validation with @hono/valibot-validator, answered the way every
// other bad input is: 400 {"error":"bad_request","message":"<name>: <what>"}.
// Query numbers use core's boundedInt (the same schema as the settings), so a
// value out of range is refused with its range, never silently clamped.
// Keys are not validated here: they keep the strict percent-decoding of
// routes/params.ts (Hono's own decoding is lenient on purpose).

function failure(issues: readonly v.BaseIssue<unknown>[]): { error: string; message: string } {
  const issue = issues[0];
  const name = issue?.path?.map((p) => String(p.key)).join(".");
  if (name && issue?.input === undefined) return { error: "bad_request", message: `${name} is required` };
  return { error: "bad_request", message: name ? `${name}: ${issue?.message}` : (issue?.message ?? "bad request") };
}

type Parsed<S extends Record<string, TextSchema<unknown>>> = { [K in keyof S]: v.InferOutput<S[K]> };

/**
 * Validates query parameters, each a text schema (core/schemas.ts) applied
 * to the parameter's text or undefined, so an absent one gets its default
 * (valibot's object() would skip a missing key's pipe).
 */
export function query<S extends Record<string, TextSchema<unknown>>>(shape: S) {
  const schema = v.pipe(
    v.record(v.string(), v.union([v.string(), v.array(v.string())])),
    v.rawTransform(({ dataset, addIssue, NEVER }) => {
      const out: Record<string, unknown> = {};
      for (const [name, field] of Object.entries(shape)) {
        const raw = dataset.value[name];
        const r = v.safeParse(field, Array.isArray(raw) ? raw[0] : raw);
        if (!r.success) {
          addIssue({ message: `${name}: ${r.issues[0].message}` });
          return NEVER;
        }
        out[name] = r.output;
      }
      return out as Parsed<S>;
    }),
  );
  return vValidator("query", schema, (result, c) => {
    if (!result.success) return c.json(failure(result.issues), 400);
  });
}

/** Validates a JSON body against `schema`; a body that is not JSON is a 400 too. */
export function jsonBody<S extends v.GenericSchema>(schema: S, example: string) {
  return vValidator("json", schema, (result, c) => {
    if (result.success) return;
    // Hono reads a body as JSON only when it says it is; anything else arrives here as {}.
    if (!/^application\/([a-z.-]+\+)?json\b/i.test(c.req.header("content-type") ?? "")) {
      return c.json({ error: "bad_request", message: `send the body as JSON, such as ${example}, with Content-Type: application/json` }, 400);
    }
    return c.json({ error: "bad_request", message: `body must be JSON such as ${example}: ${failure(result.issues).message}` }, 400);
  });
}
