import type { Context, Hono } from "hono";
import { HeadcountError } from "../core/errors.ts";
import type { Visit } from "./admission.ts";
import { visitRequest, type AdmitVisit } from "./sse.ts";

// GET /pixel.gif?key=<key>: one visit for a reader without JavaScript, put
// in <noscript> next to the widget (a browser with JavaScript never fetches
// what is inside <noscript>, so a page view is counted by one or the other).
// Admission is the socket's (rate limit, origin by the Referer's, key; bots
// where admission filters them) without the socket caps; without `key` the
// key is the Referer's path (routes/transports.ts). The answer is always the
// same transparent 1×1 GIF, `no-store` so every view asks again; a refusal
// keeps its status (429, 403, 400, 503) but still shows nothing broken.

/** Counts an admitted visit that holds no connection; resolves once it is committed. */
export type CountVisit = (visit: Visit) => Promise<unknown>;

// The smallest transparent GIF89a: 1×1, one transparent colour (42 bytes).
const GIF = Uint8Array.from(atob("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7"), (ch) => ch.charCodeAt(0));

function gif(status: number, extra: Record<string, string> = {}): Response {
  return new Response(GIF, {
    status,
    headers: {
      "Content-Type": "image/gif",
      "Content-Length": String(GIF.byteLength),
      // Caches and image proxies must not answer for us: every view is a request.
      "Cache-Control": "no-store, max-age=0",
      Expires: "0",
      // Any site may show it, even one that requires CORP of what it embeds (COEP).
      "Cross-Origin-Resource-Policy": "cross-origin",
      ...extra,
    },
  });
}

export function mountPixel(app: Hono, admit: AdmitVisit, peerAddress: (c: Context) => string | undefined, count: CountVisit, onError: (err: unknown) => void): void {
  app.get("/pixel.gif", async (c) => {
    // A link checker's HEAD sees the image and counts nothing.
    if (c.req.method === "HEAD") return gif(200);
    const decision = await admit(visitRequest(c), peerAddress(c), "pixel");
    if (decision.refused) {
      const retry = decision.refused.headers.get("retry-after");
      return gif(decision.refused.status, retry ? { "Retry-After": retry } : {});
    }
    try {
      await count(decision.visit);
    } catch (err) {
      // A refusal with its own status (403 past MAX_KEYS) is an answer, not a failure.
      if (err instanceof HeadcountError && err.status < 500) return gif(err.status);
      onError(err);
      return gif(503, { "Retry-After": "5" });
    }
    return gif(200);
  });
}
