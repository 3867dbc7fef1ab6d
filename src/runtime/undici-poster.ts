import { Agent, request } from "undici";
import type { HttpPoster } from "../core/ports.ts";
import { MAX_RESPONSE_BYTES } from "./fetch-poster.ts";

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
 * undici's request() follows no redirect (a 3xx is a failed delivery), and
 * at most MAX_RESPONSE_BYTES of the answer are read.
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
      // Consumed up to the limit (so a small answer keeps the connection reusable), then destroyed.
      await res.body.dump({ limit: MAX_RESPONSE_BYTES });
      return res.statusCode;
    },
    close: () => agent.close(),
  };
}
