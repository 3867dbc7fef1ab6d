import { InvalidKeyError } from "../core/errors.ts";

// Strict percent-decoding for keys and tokens. Hono's c.req.query() and
// c.req.param() keep a malformed sequence ("%zz", a cut-off "%E0%A4", bytes
// that are not UTF-8) as literal text rather than failing, which would count
// a visit under a key nobody asked for; here it is a 400.

function decode(raw: string, what: string): string {
  try {
    return decodeURIComponent(raw.replace(/\+/g, " "));
  } catch {
    throw new InvalidKeyError(`${what} is not valid percent-encoded UTF-8`);
  }
}

/** The first `name` parameter of the URL's query, strictly decoded; undefined when absent. */
export function strictQuery(url: string, name: string): string | undefined {
  const q = url.indexOf("?");
  if (q < 0) return undefined;
  const end = url.indexOf("#", q);
  for (const part of url.slice(q + 1, end < 0 ? undefined : end).split("&")) {
    const eq = part.indexOf("=");
    const k = eq < 0 ? part : part.slice(0, eq);
    if (decode(k, "a query parameter name") === name) return eq < 0 ? "" : decode(part.slice(eq + 1), name);
  }
  return undefined;
}

/** The raw path after `prefix`, strictly decoded (for /api/counters/<key>, /badge/<key>.svg). */
export function strictPathAfter(url: string, prefix: string): string {
  const path = new URL(url).pathname;
  return path.startsWith(prefix) ? decode(path.slice(prefix.length), "key") : "";
}
