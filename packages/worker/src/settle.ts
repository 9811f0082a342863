/** Settling an attempt: its terminal event or its retry, then the ack (docs/protocol.md §5). */
import type { Attempt } from "./attempt.js";
import { formatDuration } from "./duration.js";
import { deadLetterJob } from "./deadletter.js";
import { CancelledError, Codes, PermanentError, RetryAfterError, validCode } from "./errors.js";
import { encodeJobMessage, rfc3339, type JobError, type JobEvent } from "./messages.js";
import { queueSubjectAt, scheduleSubject } from "./names.js";
import type { Outcome } from "./run.js";

/**
 * Records the outcome and settles the message: ack after the event that settles it is stored, nak on
 * shutdown. Once the handler's signal aborted, its reason decides, whether the handler resolved or threw:
 * cancelled ends the job cancelled (with the resolved value as its partial result), timeout fails the
 * attempt with code `timeout`, stopping hands the job back.
 */
export async function settle(a: Attempt, out: Outcome): Promise<void> {
  const self = out.error instanceof CancelledError ? out.error : undefined;
  if (out.resolved && !out.reason) {
    let result: unknown;
    try {
      result = JSON.parse(JSON.stringify(out.result ?? null));
    } catch (err) {
      return failed(a, { ...out, resolved: false, error: new PermanentError(`encode result: ${(err as Error).message}`, Codes.invalidResult) });
    }
    await endJob(a, a.event({ type: "job.completed", result }));
  } else if (out.reason === "cancelled" || self) {
    const result = out.resolved ? out.result : self?.result;
    const message = self ? self.message : "cancelled while running";
    await endJob(a, a.event({ type: "job.cancelled", result: result === undefined ? undefined : JSON.parse(JSON.stringify(result)), error: { code: Codes.cancelled, message } }));
  } else if (out.reason === "stopping") {
    a.msg.nak(); // another worker starts it without waiting for its lease
    a.log("info", "job handed back on shutdown");
  } else {
    await failed(a, out);
  }
}

/** Settles a failed attempt: the end of the job, or its next attempt scheduled after the backoff. */
async function failed(a: Attempt, out: Outcome): Promise<void> {
  const err = out.error;
  // A handler that resolved after its timeout has no error of its own to add.
  let message = err instanceof Error ? err.message : err === undefined ? "" : String(err);
  let final = a.number >= a.max;
  let code: string = Codes.attemptFailed;
  if (out.reason === "timeout") {
    code = Codes.timeout;
    message = `attempt ${a.number} ran past its timeout of ${formatDuration(a.timeoutMs)}` + (message ? `: ${message}` : "");
  } else if (final) {
    code = Codes.attemptsExhausted;
  }
  if (err instanceof PermanentError) {
    code = validCode(err.code) ? err.code : Codes.permanent;
    final = true;
  }
  if (final) return failJob(a, { code, message });
  let delay = backoff(a.rc.opts.backoffBaseMs, a.rc.opts.backoffMaxMs, a.number);
  if (err instanceof RetryAfterError && err.delayMs > delay) delay = err.delayMs;
  const retryAt = new Date(Date.now() + delay);
  try {
    await a.publish(a.event({ type: "job.failed", error: { code, message }, retryAt: rfc3339(retryAt) }));
  } catch (e) {
    a.log("warn", "publish failed attempt, handing the job back", { err: e });
    a.msg.nak(1000);
    return;
  }
  a.log("info", "job attempt failed, will retry", { err: message, retry_in_ms: delay });
  await reschedule(a, retryAt);
}

/**
 * Queues the job's next attempt for `at` as a new message (a JetStream message schedule at `at` rounded
 * up to the second, targeting the queue) and acks this one; if it cannot be queued, hands the message back for then.
 */
export async function reschedule(a: Attempt, at: Date): Promise<void> {
  const now = Date.now();
  const when = new Date(Math.max(at.getTime(), now));
  const next = encodeJobMessage({ ...a.job, attempts: a.number, runAt: rfc3339(when) });
  const msgID = `${a.job.jobId}:retry:${a.requeued}:${a.number}`;
  const fireAt = new Date(Math.ceil(when.getTime() / 1000) * 1000);
  const queue = queueSubjectAt(a.job.type, a.job.priority); // the job's own level
  try {
    await a.retry(() =>
      when.getTime() > Date.now()
        ? a.rc.js.publish(scheduleSubject(a.job.jobId), next, { headers: a.traceHeaders(), msgID, schedule: { specification: `@at ${fireAt.toISOString().replace(".000Z", "Z")}`, target: queue } })
        : a.rc.js.publish(queue, next, { headers: a.traceHeaders(), msgID }),
    );
  } catch (err) {
    a.log("warn", "schedule retry, handing the job back instead", { err });
    a.msg.nak(Math.max(when.getTime() - Date.now(), 0));
    return;
  }
  a.msg.ack();
}

/** Stores a terminal event and acks the message; if it cannot be stored, hands the job back for a retry in a second. */
export async function endJob(a: Attempt, ev: JobEvent, expectLastSeq?: number): Promise<boolean> {
  try {
    await a.publish(ev, expectLastSeq);
  } catch (err) {
    a.log("warn", `publish ${ev.type}, handing the job back`, { err });
    a.msg.nak(1000);
    return false;
  }
  a.msg.ack(); // if the ack is lost, the redelivery sees the terminal event and runs nothing
  return true;
}

/** Ends the job as failed for good: its message to JOBS_DLQ, then the final failed event, then the ack. */
export async function failJob(a: Attempt, err: JobError): Promise<void> {
  try {
    await deadLetterJob(a, err);
  } catch (e) {
    a.log("warn", "dead-letter job, handing it back", { err: e });
    a.msg.nak(1000);
    return;
  }
  if (await endJob(a, a.event({ type: "job.failed", error: err, final: true }))) {
    a.log("info", "job failed", { code: err.code, reason: err.message });
  }
}

/** The pause before the attempt after `attempt`: base doubled per attempt, at most max, with full jitter. */
function backoff(baseMs: number, maxMs: number, attempt: number): number {
  let d = baseMs * 2 ** Math.min(attempt - 1, 20);
  if (!(d > 0) || d > maxMs) d = maxMs;
  return d / 2 + Math.random() * (d / 2);
}
