// Retry delays: exponential backoff with "equal jitter" (half of the delay
// fixed, half random), so retries after a shared outage spread out instead of
// arriving together, and no retry comes sooner than half the backoff.
// https://aws.amazon.com/blogs/architecture/exponential-backoff-and-jitter/

export interface BackoffOptions {
  /** The delay before the first retry (attempt 0), before jitter. */
  baseMs: number;
  /** The ceiling the doubling stops at, before jitter. */
  maxMs: number;
  /** A number in [0, 1); Math.random by default, a fixed one in tests. */
  random?: () => number;
}

/** Doubling stops mattering long before this; it keeps 2 ** attempt finite. */
const MAX_EXPONENT = 52;

/**
 * Milliseconds (whole) to wait before retry number `attempt` (0 = the first
 * retry): min(maxMs, baseMs * 2^attempt), of which half is fixed and half
 * random.
 */
export function backoffMs(attempt: number, opts: BackoffOptions): number {
  const exponent = Math.min(Math.max(0, Math.floor(attempt)), MAX_EXPONENT);
  const ceiling = Math.min(opts.maxMs, opts.baseMs * 2 ** exponent);
  const random = opts.random ?? Math.random;
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}
