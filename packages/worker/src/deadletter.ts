/** Dead letters in JOBS_DLQ: jobs that failed for good, and queued messages that are not job messages. */
import { headers } from "@nats-io/nats-core";
import type { Attempt, RunnerContext } from "./attempt.js";
import type { Delivery } from "./fetch.js";
import { Codes } from "./errors.js";
import type { JobError } from "./messages.js";
import { deadLetterSubject, malformedSubject } from "./names.js";

/**
 * Copies the job message to `jobs.dlq.<owner>.<jobId>` with the headers of docs/protocol.md §5 (and the
 * attempt's trace context, if it has a span) and waits for the ack.
 */
export async function deadLetterJob(a: Attempt, err: JobError): Promise<void> {
  const h = a.traceHeaders();
  h.set("Jobwire-Job-Id", a.job.jobId);
  h.set("Jobwire-Owner", a.job.owner);
  h.set("Jobwire-Error", `${err.code}: ${err.message}`);
  h.set("Jobwire-Attempts", String(a.number));
  const msgID = `${a.job.jobId}:dlq:${a.requeued}:${a.number}`;
  await a.retry(() => a.rc.js.publish(deadLetterSubject(a.job.owner, a.job.jobId), a.msg.data, { headers: h, msgID }));
}

/**
 * Keeps a queued message that is not a job message in JOBS_DLQ under `jobs.dlq._malformed.<seq>` with
 * the reason and where it was queued, then terminates it: it never runs. If the copy cannot be stored,
 * the message is handed back (1 s) to be tried again; the copy's message id stores it once.
 */
export async function deadLetterMalformed(rc: RunnerContext, msg: Delivery, reason: string): Promise<void> {
  const seq = msg.info!.streamSequence;
  const h = headers();
  h.set("Jobwire-Error", `${Codes.invalidJobMessage}: ${reason}`);
  h.set("Jobwire-Queue-Subject", msg.subject);
  h.set("Jobwire-Queue-Seq", String(seq));
  try {
    await rc.js.publish(malformedSubject(seq), msg.data, { headers: h, msgID: `malformed:${seq}`, timeout: 10_000 });
  } catch (err) {
    rc.log.warn("dead-letter a malformed job message, retrying", { seq, err });
    msg.nak(1000);
    return;
  }
  rc.log.error("malformed job message dead-lettered", { seq, subject: msg.subject, reason });
  msg.term();
}
