/** Retrying writes while NATS is unavailable (docs/protocol.md §5, "a write that keeps failing"). */
import { JetStreamApiError } from "@nats-io/jetstream";

/** The server's answer to a write whose expected last subject sequence did not hold. */
export function isWrongLastSequence(err: unknown): boolean {
  return err instanceof JetStreamApiError && (err.code === 10071 || err.code === 10164);
}

/** Whether retrying cannot help: the server refused the request itself (a 4xx API error). */
function isFinal(err: unknown): boolean {
  return err instanceof JetStreamApiError && err.status >= 400 && err.status < 500;
}

export interface RetryOptions {
  /** How long to keep trying. Default 60 s, as the Go SDK. */
  forMs?: number;
  /** Called before each pause, e.g. to renew the lease of the job in hand. */
  onRetry?: (err: unknown) => void;
}

/** Calls op until it succeeds, fails for good, or `forMs` runs out; pauses from 100 ms doubling to 5 s. */
export async function retrying<T>(op: () => Promise<T>, { forMs = 60_000, onRetry }: RetryOptions = {}): Promise<T> {
  const deadline = Date.now() + forMs;
  for (let wait = 100; ; wait = Math.min(wait * 2, 5000)) {
    try {
      return await op();
    } catch (err) {
      if (isFinal(err) || Date.now() + wait > deadline) throw err;
      onRetry?.(err);
      await new Promise((r) => setTimeout(r, wait));
    }
  }
}
