import type { Context, Hono } from "hono";
import type { PendingAdmission, UpgradeRequest, Visit, VisitTransport } from "./admission.ts";

// GET /sse?key=<key>: the same visit as /ws, as Server-Sent Events, for
// networks that block WebSocket upgrades (corporate proxies, some antivirus
// products and hotel networks). Admission is the WebSocket's (rate limit,
// origin, caps, key, resume; bots where admission filters them), with the
// stream's own checks; a refusal is its HTTP status before any stream starts.
// The stream itself is routes/event-stream.ts; who holds it is the host's
// business (the in-process hub, or the key's Durable Object on Workers).

/** Serves an admitted visit's event stream, with these extra response headers (CORS). */
export type OpenStream = (visit: Visit, c: Context, headers: Record<string, string>) => Response | Promise<Response>;

export type AdmitVisit = (req: UpgradeRequest, peerAddress: string | undefined, transport: VisitTransport) => PendingAdmission;

/** The request as admission reads it. */
export function visitRequest(c: Context): UpgradeRequest {
  return { method: c.req.method, url: c.req.url, header: (name) => c.req.header(name) };
}

export function mountStream(app: Hono, admit: AdmitVisit, peerAddress: (c: Context) => string | undefined, open: OpenStream): void {
  app.get("/sse", async (c) => {
    const decision = await admit(visitRequest(c), peerAddress(c), "stream");
    if (decision.refused) return decision.refused;
    // A cross-origin EventSource is a CORS request: the origin admission allowed may read the stream.
    const origin = c.req.header("origin");
    return open(decision.visit, c, origin ? { "Access-Control-Allow-Origin": origin, Vary: "Origin" } : {});
  });
}
