import type { Who } from "../core/visitors.ts";
import type { Visit } from "../routes/admission.ts";

// Who a visit is (a person, for the day's hash, or a bot: core/visitors.ts),
// from the Worker's admission to the key's object (cloudflare-stubs.ts to
// cloudflare-room.ts). In a header rather than the URL: the user agent (its
// first 512 bytes, as admission kept it) is for the hash only, and URLs are
// what request logs keep.

export const WHO_HEADER = "x-headcount-who";

/** The visit's request headers (a copy of `from`) with who it is. */
export function withWho(visit: Visit, from?: Headers): Headers {
  const headers = new Headers(from);
  headers.set(WHO_HEADER, visit.who.bot ? "bot" : `ua ${encodeURIComponent(visit.who.ua)}`);
  return headers;
}

/** Who a visit is, as the Worker passed it on; none or malformed: a bot. The address is the URL's (the caps use it too). */
export function whoOf(url: URL, request: Request): Who {
  const who = request.headers.get(WHO_HEADER) ?? "bot";
  if (!who.startsWith("ua ")) return { bot: true };
  let ua: string;
  try {
    ua = decodeURIComponent(who.slice(3));
  } catch {
    return { bot: true };
  }
  return { bot: false, address: url.searchParams.get("address") ?? "unknown", ua };
}
