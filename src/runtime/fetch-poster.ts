import type { HttpPoster } from "../core/ports.ts";

/** The most of a receiver's answer we read: its status is all that matters. */
export const MAX_RESPONSE_BYTES = 4096;

/**
 * Bun, Deno and Workers: the runtime's fetch, which pools and keeps
 * connections alive itself. The per-origin cap is the webhook worker's; fetch
 * has no separate connect timeout, so the whole request has one deadline.
 * Redirects are never followed (a 307 would re-post the signed body anywhere,
 * loopback included): a 3xx is a failed delivery with its status. At most
 * MAX_RESPONSE_BYTES of the answer are read, then the body is cancelled.
 */
export function fetchPoster(opts: { timeoutMs: number }): HttpPoster {
  return {
    async post(url, body, headers) {
      const res = await fetch(url, { method: "POST", body, headers, redirect: "manual", signal: AbortSignal.timeout(opts.timeoutMs) });
      await drain(res.body);
      return res.status;
    },
    close: async () => {},
  };
}

async function drain(body: ReadableStream<Uint8Array> | null): Promise<void> {
  if (!body) return;
  const reader = body.getReader();
  let read = 0;
  try {
    while (read <= MAX_RESPONSE_BYTES) {
      const { done, value } = await reader.read();
      if (done) return;
      read += value.byteLength;
    }
    await reader.cancel();
  } catch {
    // a body that fails mid-way does not change the status we got
  } finally {
    reader.releaseLock();
  }
}
