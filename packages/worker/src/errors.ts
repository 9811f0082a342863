/** Error codes the SDK writes into failed jobs, as the Go SDK does (docs/protocol.md §3). */
export const Codes = {
  attemptFailed: "attempt_failed",
  attemptsExhausted: "attempts_exhausted",
  timeout: "timeout",
  invalidInput: "invalid_input",
  invalidResult: "invalid_result",
  cancelled: "cancelled",
  permanent: "permanent_failure",
  invalidJobMessage: "invalid_job_message",
} as const;

const codePattern = /^[a-z0-9_.]{1,64}$/;

/** Reports whether code is a usable error code (`^[a-z0-9_.]{1,64}$`). */
export function validCode(code: string): boolean {
  return codePattern.test(code);
}

/**
 * A failure no retry can fix: the job fails at once, is dead-lettered, and its error carries `code`
 * (lower-case letters, digits, `_` and `.`, at most 64; anything else becomes `permanent_failure`).
 */
export class PermanentError extends Error {
  override name = "PermanentError";
  constructor(message: string, readonly code: string = Codes.permanent, options?: ErrorOptions) {
    super(message, options);
  }
}

/** A failure worth retrying no sooner than `delayMs` from now (when that is longer than the backoff). */
export class RetryAfterError extends Error {
  override name = "RetryAfterError";
  constructor(readonly delayMs: number, message = "retry later", options?: ErrorOptions) {
    super(message, options);
  }
}

/** Ends the job as cancelled by its own handler, keeping `result` as its partial result. No retry follows. */
export class CancelledError extends Error {
  override name = "CancelledError";
  constructor(message = "cancelled by its handler", readonly result?: unknown, options?: ErrorOptions) {
    super(message, options);
  }
}

/** Why a handler's signal was aborted. */
export type AbortKind = "cancelled" | "timeout" | "stopping";

/**
 * The `reason` of an aborted handler signal:
 * - `cancelled`: a user cancelled the job; return promptly with the partial result, the job ends cancelled and keeps it;
 * - `timeout`: the attempt ran past its timeout; it fails with code `timeout` and is retried like any failure;
 * - `stopping`: the worker is stopping and its shutdown grace ran out; the job is handed back to the queue.
 */
export class AbortReason extends Error {
  override name = "AbortReason";
  constructor(readonly kind: AbortKind) {
    super(kind === "cancelled" ? "job cancelled by request" : kind === "timeout" ? "job attempt timed out" : "worker stopping");
  }
}
