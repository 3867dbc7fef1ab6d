import { Agent, request } from "undici";
import type { HttpPoster } from "../core/ports.ts";

export interface PosterOptions {
  /** Cap on open connections per origin (scheme, host, port). */
  perOrigin: number;
  connectTimeoutMs: number;
  /** Deadline for the whole request, queueing for a connection included. */
  timeoutMs: number;
}

/**
 * Node: undici's Agent keeps one Pool per origin with kept-alive connections
 * and at most `connections` open at once, which is exactly the per-origin
 * discipline webhooks need (https://undici.nodejs.org/#/docs/api/Agent).
 */
export function undiciPoster(opts: PosterOptions): HttpPoster {
  const agent = new Agent({
    connections: opts.perOrigin,
    connect: { timeout: opts.connectTimeoutMs },
    headersTimeout: opts.timeoutMs,
    bodyTimeout: opts.timeoutMs,
    keepAliveTimeout: 10_000,
  });
  return {
    async post(url, body, headers) {
      const res = await request(url, {
        method: "POST",
        body,
        headers,
        dispatcher: agent,
        signal: AbortSignal.timeout(opts.timeoutMs),
      });
      await res.body.dump(); // always consume, or the connection is not reused
      return res.statusCode;
    },
    close: () => agent.close(),
  };
}
