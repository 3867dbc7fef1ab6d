// The Host header of a request must be host[:port] (RFC 9112 §3.2, RFC 3986
// §3.2.2). A runtime that builds the request URL by pasting Host in front of
// the target would otherwise let a client steer the route: with
// `Host: x/metrics?`, `GET /healthz` becomes http://x/metrics?/healthz, and a
// proxy that allows /healthz through would have let /metrics through. Deno
// and wrangler's dev server route so; Node refuses it while parsing (and
// node-ws.ts refuses it on the upgrade path, which node:http hands over
// unparsed). Underscores are allowed: Docker service names have them.

const HOST = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)(:\d{1,5})?$/;

/** Whether a Host header may be used to build a URL; no header at all (HTTP/1.0, HTTP/2) is for the runtime to fill in. */
export function validHost(host: string | null | undefined): boolean {
  return host === null || host === undefined || HOST.test(host);
}

/** The answer to a request whose Host is not host[:port]; Connection: close, as the connection is not worth keeping. */
export function badHostResponse(): Response {
  return Response.json({ error: "bad_request", message: "the Host header must be host[:port]" }, { status: 400, headers: { Connection: "close" } });
}
