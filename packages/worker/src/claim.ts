/** The claim: deciding on a delivery from the job's last event (docs/protocol.md §4). */
import { Attempt, type RunnerContext } from "./attempt.js";
import { deadLetterMalformed } from "./deadletter.js";
import type { Delivery } from "./fetch.js";
import { Codes } from "./errors.js";
import { decodeJobMessage, isTerminal, type JobEvent } from "./messages.js";
import { endJob, failJob, reschedule } from "./settle.js";
import { waitForTicket } from "./ratelimit.js";
import { isWrongLastSequence } from "./retry.js";

/** How often the claim reads the job again after another writer moved it on, as the Go SDK. */
const claimTries = 5;

type Verdict = "run" | "skip" | "cancel" | "reschedule" | "exhaust";

/**
 * Decides whether the delivery is to run and, if so, writes job.started expecting the last event it
 * decided on to still be the last. It settles the message itself and returns undefined when there is
 * nothing to run; the attempt it returns is tracked (its cancel requests reach it). An attempt span
 * started for a job.started that was not written ends here.
 */
export async function claim(rc: RunnerContext, msg: Delivery): Promise<Attempt | undefined> {
  const a = await newAttempt(rc, msg);
  if (!a) return undefined;
  const started = await start(a);
  if (!started) a.endSpan();
  return started;
}

/** The claim of a decoded delivery (see claim). */
async function start(a: Attempt): Promise<Attempt | undefined> {
  const { rc, msg } = a;
  let ticketed = false;
  try {
    for (let i = 0; i < claimTries; i++) {
      const last = await readLastEvent(a);
      if (!last) return undefined;
      switch (await decide(a, last.event)) {
        case "skip":
          msg.ack();
          return undefined;
        case "cancel":
          await endJob(a, a.event({ type: "job.cancelled", error: { code: Codes.cancelled, message: "cancelled while it was not running" } }), last.seq);
          return undefined;
        case "reschedule":
          await reschedule(a, new Date(last.event.retryAt!));
          return undefined;
        case "exhaust":
          await failJob(a, { code: Codes.attemptsExhausted, message: `the job stopped its worker on every attempt (${a.number - 1})` });
          return undefined;
      }
      if (!ticketed) {
        // A rate-limited type: one start ticket before job.started, held here until the window has room.
        const { ok, waited } = await waitForTicket(a);
        if (!ok) return undefined;
        ticketed = true;
        if (waited) continue; // the job may have moved on meanwhile: decide again on its last event
      }
      a.startSpan(); // the events of the attempt, job.started first, carry its trace context
      // Listen for the job's cancellation before anyone can see it started.
      rc.track(a);
      try {
        await a.publish(a.event({ type: "job.started", worker: rc.workerName }), last.seq);
        return a;
      } catch (err) {
        rc.untrack(a);
        if (!isWrongLastSequence(err)) {
          a.log("warn", "publish started, handing the job back", { err });
          break;
        }
      }
    }
  } catch (err) {
    a.log("warn", "claim, handing the job back", { err });
  }
  msg.nak(1000);
  return undefined;
}

/** Decodes the delivery; a message that is not a job message is dead-lettered (undefined). */
async function newAttempt(rc: RunnerContext, msg: Delivery): Promise<Attempt | undefined> {
  const info = msg.info;
  if (!info || !info.streamSequence) {
    rc.log.error("job message without metadata terminated", { subject: msg.subject });
    msg.term();
    return undefined;
  }
  let job;
  try {
    job = decodeJobMessage(msg.data, rc.jobType.type);
  } catch (err) {
    await deadLetterMalformed(rc, msg, (err as Error).message);
    return undefined;
  }
  const number = (job.attempts ?? 0) + info.deliveryCount;
  const max = job.maxAttempts ? Math.min(job.maxAttempts, rc.opts.maxAttempts) : rc.opts.maxAttempts;
  return new Attempt(rc, msg, job, number, max);
}

/**
 * The job's last event. A job message without any event is a job whose submitted event was never
 * stored: it is written now, from the message, with the gateway's message id. undefined: handed back.
 */
async function readLastEvent(a: Attempt): Promise<{ event: JobEvent; seq: number } | undefined> {
  for (;;) {
    const last = await a.lastEvent();
    if (last) return last;
    const j = a.job;
    const submitted: JobEvent = { v: 1, type: "job.submitted", jobId: j.jobId, jobType: j.type, owner: j.owner, at: j.createdAt, name: j.name, runAt: j.runAt, priority: j.priority, queueSeq: a.msg.info!.streamSequence };
    try {
      await a.publish(submitted, 0);
    } catch (err) {
      if (!isWrongLastSequence(err)) throw err;
    }
  }
}

/** The claim's verdict on the delivery given the job's last event. */
async function decide(a: Attempt, last: JobEvent): Promise<Verdict> {
  const running = last.type === "job.started" || last.type === "job.progress" || last.type === "job.failed";
  if (isTerminal(last)) return "skip";
  if (running && (last.attempt ?? 0) >= a.number) return "skip"; // a stale copy whose attempt already ran
  if (last.type === "job.failed" && last.retryAt && Date.parse(last.retryAt) > Date.now() + 1000) return "reschedule";
  if (running && (await a.cancelRequested())) return "cancel";
  if (a.number > a.max) return "exhaust";
  return "run";
}
