import type { HttpPoster } from "../core/ports.ts";
import type { PosterOptions } from "./undici-poster.ts";

/**
 * Bun, Deno and Workers: the runtime's fetch, which pools and keeps
 * connections alive itself. The per-origin cap is the webhook worker's (it
 * never runs more than WEBHOOK_MAX_CONNECTIONS_PER_ORIGIN deliveries to one
 * origin at once); fetch has no separate connect timeout, so the whole
 * request has one deadline.
 */
export function fetchPoster(opts: Pick<PosterOptions, "timeoutMs">): HttpPoster {
  return {
    async post(url, body, headers) {
      const res = await fetch(url, { method: "POST", body, headers, signal: AbortSignal.timeout(opts.timeoutMs) });
      await res.arrayBuffer(); // always consume the body
      return res.status;
    },
    close: async () => {},
  };
}
