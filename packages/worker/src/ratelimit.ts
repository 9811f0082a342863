/** Rate limits: a start ticket before each job.started of a limited type (docs/protocol.md §7). */
import { JetStreamApiError, JetStreamError, type JetStreamClient, type JetStreamManager } from "@nats-io/jetstream";
import type { Attempt } from "./attempt.js";
import { untilAborted } from "./control.js";
import { rateStream, rateSubject } from "./names.js";

/** Spaces the tries of a worker whose ticket was refused (as the Go SDK). */
const minTicketWaitMs = 10;

/** JetStream's "failed to store the message", which a full DiscardNew stream answers ("maximum messages exceeded"). */
const errCodeStoreFailed = 10077;
const errCodeStreamNotFound = 10059;

function isWindowFull(err: unknown): boolean {
  return err instanceof JetStreamApiError && err.code === errCodeStoreFailed && err.message.includes("maximum messages exceeded");
}

/** A publish that no stream answered: the type's ticket stream is gone (its limit was just lifted). */
function isNoStream(err: unknown): boolean {
  return (err instanceof Error && err.name === "JetStreamNotEnabled") || (err instanceof JetStreamError && err.message === "invalid ack response");
}

/**
 * Stores one start ticket of the type: 0 when the start may go ahead (also when the type has no
 * ticket stream), or how long to wait before the next try when the window is full: until the oldest
 * ticket ages out (the stream's first message time + its max age).
 */
export async function takeTicket(js: JetStreamClient, jsm: JetStreamManager, type: string): Promise<number> {
  try {
    await js.publish(rateSubject(type));
    return 0;
  } catch (err) {
    if (isNoStream(err)) return 0;
    if (!isWindowFull(err)) throw new Error(`take a start ticket of ${type}: ${(err as Error).message}`, { cause: err });
  }
  let info;
  try {
    info = await jsm.streams.info(rateStream(type));
  } catch (err) {
    if (err instanceof JetStreamApiError && err.code === errCodeStreamNotFound) return 0;
    throw new Error(`read ${rateStream(type)}: ${(err as Error).message}`, { cause: err });
  }
  const wait = Date.parse(info.state.first_ts) + info.config.max_age / 1e6 - Date.now();
  return Math.max(Number.isFinite(wait) ? wait : 0, minTicketWaitMs);
}

/**
 * Holds a delivery until the type's rate limit, if it has one, lets one more job start, renewing its
 * lease meanwhile and looking again when the control entry changes. ok is false, with the delivery
 * handed back (1 s), when the worker stops fetching first; waited is true when the start was held back.
 */
export async function waitForTicket(a: Attempt): Promise<{ ok: boolean; waited: boolean }> {
  const rc = a.rc;
  let waited = false;
  let renew: NodeJS.Timeout | undefined;
  try {
    for (;;) {
      const { entry, changed } = rc.control.current();
      if (!entry.rateLimit) return { ok: true, waited };
      let wait: number;
      try {
        wait = await takeTicket(rc.js, rc.jsm, rc.jobType.type);
        if (wait === 0) return { ok: true, waited };
      } catch (err) {
        if (!rc.fetching.aborted) a.log("warn", "take a start ticket, retrying", { err });
        wait = 1000;
      }
      waited = true;
      renew ??= setInterval(() => a.msg.working(), rc.opts.ackWaitMs / 3);
      let timer: NodeJS.Timeout | undefined;
      const stop = untilAborted(rc.fetching);
      await Promise.race([new Promise((r) => (timer = setTimeout(r, wait))), changed, stop.promise]);
      clearTimeout(timer);
      stop.cancel();
      if (rc.fetching.aborted) {
        a.msg.nak(1000);
        return { ok: false, waited };
      }
    }
  } finally {
    clearInterval(renew);
  }
}
