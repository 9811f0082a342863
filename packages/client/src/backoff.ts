// How long a watch waits before it opens its stream again.

/** The first pause after a failure, doubled per consecutive failure up to MAX_BACKOFF_MS. */
export const BASE_BACKOFF_MS = 1000;
/** The longest pause between two attempts. */
export const MAX_BACKOFF_MS = 30_000;

/**
 * backoffDelay is the pause before attempt number `failures` (1 for the first retry): between half
 * and all of BASE_BACKOFF_MS·2^(failures-1), capped at MAX_BACKOFF_MS, so tabs never retry in step.
 * With retryAfterSec (the server's Retry-After) it never waits less than that, plus up to a quarter.
 */
export function backoffDelay(failures: number, retryAfterSec?: number, random: () => number = Math.random): number {
  const exp = Math.min(MAX_BACKOFF_MS, BASE_BACKOFF_MS * 2 ** Math.max(0, failures - 1));
  const jittered = exp / 2 + random() * (exp / 2);
  if (retryAfterSec === undefined) return Math.round(jittered);
  const floor = retryAfterSec * 1000;
  return Math.round(Math.max(floor + random() * (floor / 4), jittered));
}

/** expiredDelay is the pause after an "expired" event: 250 ms to 1.5 s, so streams opened together
 *  do not all come back at the same moment. */
export function expiredDelay(random: () => number = Math.random): number {
  return Math.round(250 + random() * 1250);
}
