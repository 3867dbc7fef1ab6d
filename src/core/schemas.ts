// valibot is a runtime-neutral library with no I/O, the one library core/ may import (DESIGN.md §1).
import * as v from "valibot";

// Schemas for one text value: an environment variable or a query parameter,
// `undefined` when absent. Blank text counts as absent and values are
// trimmed, so `PORT=` and `PORT= 80 ` mean what a person means. Messages say
// what was wrong without naming the value's name: the caller prefixes it
// (`PORT: …`, `limit: …`).

/** Reads one text value (undefined when absent) into a T, or reports the first thing wrong with it. */
export type TextSchema<T> = v.GenericSchema<string | undefined, T>;

export type TextResult<T> = { ok: true; value: T } | { ok: false; message: string };

/** Trimmed text, or undefined when absent or blank. */
export const trimmed: TextSchema<string | undefined> = v.pipe(
  v.optional(v.string()),
  v.transform((s) => (s === undefined || s.trim() === "" ? undefined : s.trim())),
);

/** The value, or the message of the first issue. */
export function parseText<T>(schema: TextSchema<T>, raw: string | undefined): TextResult<T> {
  const result = v.safeParse(schema, raw, { abortEarly: true });
  return result.success ? { ok: true, value: result.output } : { ok: false, message: result.issues[0].message };
}

/**
 * A whole number from `min` to `max` written in decimal digits (no sign,
 * exponent, fraction or hex). Absent or blank: `fallback`, or undefined
 * when there is none. Out of range is refused, never clamped.
 */
export function boundedInt(min: number, max: number, fallback: number): TextSchema<number>;
export function boundedInt(min: number, max: number): TextSchema<number | undefined>;
export function boundedInt(min: number, max: number, fallback?: number): TextSchema<number | undefined> {
  const digits = v.pipe(
    v.string(),
    v.regex(/^\d+$/, (issue) => `expected a whole number, got "${issue.input}"`),
    v.check((s: string) => Number(s) >= min && Number(s) <= max, (issue) => `must be between ${min} and ${max}, got ${issue.input}`),
    v.transform(Number),
  );
  return v.pipe(trimmed, fallback === undefined ? v.optional(digits) : v.optional(digits, String(fallback)));
}

/** Text with a default. */
export function textOr(fallback: string): TextSchema<string> {
  return v.pipe(trimmed, v.optional(v.string(), fallback));
}

/** Optional text that must pass `check` (with `message` when it does not). */
export function optionalText(check: (s: string) => boolean, message: string): TextSchema<string | undefined> {
  return v.pipe(trimmed, v.optional(v.pipe(v.string(), v.check(check, message))));
}

/** One of `options`, compared case-insensitively, with a default. */
export function oneOf<const T extends string>(options: readonly T[], fallback: T): TextSchema<T> {
  const known = (s: string): s is T => (options as readonly string[]).includes(s);
  return v.pipe(
    textOr(fallback),
    v.transform((s) => s.toLowerCase()),
    v.check(known, (issue) => `must be one of ${options.join(", ")}, got "${issue.input}"`),
    v.transform((s) => s as T),
  );
}

/** An origin exactly as a browser sends it: http(s)://host[:port]; a trailing slash is dropped. */
function isOrigin(text: string): boolean {
  if (!URL.canParse(text)) return false;
  const url = new URL(text);
  return (url.protocol === "http:" || url.protocol === "https:") && url.origin === text;
}

/** "*" (the default: any origin) or a comma-separated list of origins such as https://example.com. */
export const originList: TextSchema<"*" | string[]> = v.pipe(
  textOr("*"),
  v.rawTransform(({ dataset, addIssue, NEVER }) => {
    if (dataset.value === "*") return "*" as const;
    const origins: string[] = [];
    for (const part of dataset.value.split(",")) {
      const origin = part.trim().replace(/\/$/, "");
      if (!isOrigin(origin)) {
        addIssue({ message: `expected "*" or a comma-separated list of origins such as https://example.com, got "${part.trim()}"` });
        return NEVER;
      }
      origins.push(origin);
    }
    return origins;
  }),
);

/** The word in ALLOWED_ORIGINS for this server's own origin (the request's Host). */
export const SELF_ORIGIN = "self";

/**
 * ALLOWED_ORIGINS: "*" (any site), or a comma-separated list of origins and
 * the word `self` (this server's own pages, whatever name they were reached
 * by). Default `self`: a public server counts its own pages only until told
 * otherwise.
 */
export const allowedOriginList: TextSchema<"*" | string[]> = v.pipe(
  textOr(SELF_ORIGIN),
  v.rawTransform(({ dataset, addIssue, NEVER }) => {
    if (dataset.value === "*") return "*" as const;
    const origins: string[] = [];
    for (const part of dataset.value.split(",")) {
      const item = part.trim().replace(/\/$/, "");
      if (item.toLowerCase() === SELF_ORIGIN) origins.push(SELF_ORIGIN);
      else if (isOrigin(item)) origins.push(item);
      else {
        addIssue({ message: `expected "*", or a comma-separated list of "self" and origins such as https://example.com, got "${part.trim()}"` });
        return NEVER;
      }
    }
    return origins;
  }),
);

/** An HTTP header name, lower-cased (how runtimes hand headers over), or undefined. */
export const headerName: TextSchema<string | undefined> = v.pipe(
  trimmed,
  v.optional(
    v.pipe(
      v.string(),
      v.regex(/^[A-Za-z0-9-]+$/, (issue) => `"${issue.input}" is not an HTTP header name`),
      v.transform((s) => s.toLowerCase()),
    ),
  ),
);
