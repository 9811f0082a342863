/** Running the handler of a claimed attempt (docs/protocol.md §5: lease, timeout, abandoned handlers). */
import type { Attempt } from "./attempt.js";
import { AbortReason, type AbortKind } from "./errors.js";

/** What one run of the handler came to. */
export interface Outcome {
  /** true when the handler resolved (result set), false when it threw (error set) or was abandoned. */
  resolved: boolean;
  result?: unknown;
  error?: unknown;
  /** Why the handler's signal was aborted, if it was. */
  reason?: AbortKind;
  abandoned?: boolean;
}

/**
 * Calls the handler with a signal that aborts on a cancel request, at the attempt's timeout, or when
 * the worker stops, renewing the lease at a third of ack wait (and looking for a missed cancel request
 * each time). A handler that has not returned within stopGrace of its signal aborting is abandoned.
 */
export async function runHandler(a: Attempt): Promise<Outcome> {
  const { opts, jobType } = a.rc;
  const signal = a.abort.signal;
  const timeout = setTimeout(() => a.abort.abort(new AbortReason("timeout")), a.timeoutMs);
  const lease = setInterval(() => renewLease(a), opts.ackWaitMs / 3);
  const reason = () => (signal.reason instanceof AbortReason ? signal.reason.kind : undefined);
  const call = (async (): Promise<Outcome> => {
    try {
      const input = jobType.checkInput(a.job.input);
      const job = { id: a.job.jobId, type: a.job.type, owner: a.job.owner, input, attempt: a.number, maxAttempts: a.max, createdAt: new Date(a.job.createdAt), name: a.job.name ?? "" };
      const result = await a.inSpan(() => jobType.handler(job, { progress: a.progress.report, signal }));
      return { resolved: true, result, reason: reason() };
    } catch (error) {
      return { resolved: false, error, reason: reason() };
    }
  })();
  const { abandoned, cancel } = abandonment(a);
  try {
    return await Promise.race([call, abandoned]);
  } finally {
    cancel();
    clearTimeout(timeout);
    clearInterval(lease);
    a.progress.stop();
  }
}

/**
 * Resolves with an abandoned outcome stopGrace after the attempt's signal aborted; never if it does not.
 * cancel() stops the watch once the handler has returned, so no abandonment is reported for it.
 */
function abandonment(a: Attempt): { abandoned: Promise<Outcome>; cancel: () => void } {
  const signal = a.abort.signal;
  const grace = a.rc.opts.stopGraceMs;
  let timer: NodeJS.Timeout | undefined;
  let later = () => {};
  const abandoned = new Promise<Outcome>((resolve) => {
    later = () => {
      timer = setTimeout(() => {
        const kind = (signal.reason as AbortReason).kind;
        a.log("warn", "handler abandoned: it did not return after its signal aborted", { cause: kind, grace_ms: grace });
        resolve({ resolved: false, abandoned: true, reason: kind, error: new Error(`the handler did not return within ${grace}ms after ${signal.reason.message}, and was abandoned`) });
      }, grace);
    };
    if (signal.aborted) later();
    else signal.addEventListener("abort", later, { once: true });
  });
  return { abandoned, cancel: () => { clearTimeout(timer); signal.removeEventListener("abort", later); } };
}

async function renewLease(a: Attempt) {
  a.msg.working();
  if (!a.abort.signal.aborted && (await a.cancelRequested(false))) a.abort.abort(new AbortReason("cancelled"));
}
