import type { UpgradeRequest } from "./admission.ts";

// What a visit's request must look like on the two transports that are not a
// WebSocket: an event stream (GET /sse, the fallback where upgrades are
// blocked) and the pixel (GET /pixel.gif, for readers without JavaScript).
// Admission (admission.ts) applies the same rules to all three; these are the
// parts that differ.

export type StreamProblem = { status: 405 | 406; message: string; headers?: Record<string, string> };

/** A stream is a GET that accepts `text/event-stream` (EventSource sends exactly that; a missing Accept or a wildcard is tolerated). */
export function streamProblem(req: UpgradeRequest): StreamProblem | null {
  // HEAD would be answered like a GET by the routers, and count a visit nobody watches.
  if (req.method !== "GET") return { status: 405, message: "the event stream is a GET", headers: { Allow: "GET" } };
  const accept = req.header("accept");
  if (accept && !/(^|,)\s*(text\/event-stream|text\/\*|\*\/\*)\s*(;|,|$)/i.test(accept)) {
    return { status: 406, message: "this endpoint speaks text/event-stream only" };
  }
  return null;
}

/**
 * The resume token in an EventSource's own reconnect: every event's `id` is
 * `<seq>:<resume token>` (routes/event-stream.ts), and the browser sends the
 * last one back as `Last-Event-ID`.
 */
export function lastEventToken(req: UpgradeRequest): string | null {
  const id = req.header("last-event-id");
  if (!id) return null;
  const colon = id.indexOf(":");
  return colon < 0 || colon === id.length - 1 ? null : id.slice(colon + 1);
}

/** The Referer as a URL, when there is one and it parses. */
export function referer(req: UpgradeRequest): URL | null {
  const raw = req.header("referer");
  if (!raw) return null;
  try {
    return new URL(raw);
  } catch {
    return null;
  }
}

/** This server's own page (public/index.html), whose key is its `?key=` parameter. */
const OWN_PAGE = new Set(["/", "/index.html"]);

/**
 * The key of a pixel without `?key=`: the path of the page that shows it (the
 * Referer), as `location.pathname` gives it, so it is the key the widget
 * takes without `data-key`. On this server's own page the key is the page's
 * `?key=` (default `/`), the one the page shows. Null without a Referer.
 */
export function pixelKeyFromReferer(req: UpgradeRequest): string | null {
  const from = referer(req);
  if (!from) return null;
  if (from.host === req.header("host") && OWN_PAGE.has(from.pathname)) return from.searchParams.get("key") || "/";
  return from.pathname;
}
