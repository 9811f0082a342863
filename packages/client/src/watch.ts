// A watch: one stream (a job's, or all of the caller's jobs) followed for as long as it has something
// to say, across dropped connections, expiries, refusals and page reloads.

import { backoffDelay, expiredDelay } from "./backoff.js";
import { JobwireError, errorFromResponse } from "./errors.js";
import type { Position } from "./position.js";
import { readEvents, type SseEvent } from "./sse.js";
import { JOB_STATES, isTerminal, type ConsoleSnapshot, type JobState } from "./types.js";

/** Where a watch stands. */
export type WatchStatus =
  /** Opening the stream (attempt counts the consecutive failures before it, from 0). */
  | { state: "connecting"; attempt: number }
  /** The stream is open: events arrive as they happen. */
  | { state: "live" }
  /** Waiting delayMs before opening the stream again: it dropped, expired, was refused (429, 503,
   *  5xx: error says which, with its Retry-After) or the server could not be reached. */
  | { state: "waiting"; reason: "dropped" | "expired" | "refused" | "unreachable"; delayMs: number; error?: JobwireError }
  /** For good: the job ended (terminal: its terminal state was delivered; no-content: a 204, the
   *  terminal state was seen before), close() was called, or the server refused the stream
   *  (unauthorized: a 401 even with a fresh token; refused: 400, 403, 404). */
  | { state: "ended"; reason: "terminal" | "no-content" | "closed" | "unauthorized" | "refused"; error?: JobwireError };

/** The statuses that end a watch. */
export type WatchEnd = Extract<WatchStatus, { state: "ended" }>;

/** What a watch tells you. Every handler is optional; an exception in one is passed to onError. */
export interface WatchHandlers {
  /** A job's new state. Never one you already had (a lower or equal revision of the same job); a
   *  slow client skips intermediate progress, but the terminal state always arrives. */
  onState?(job: JobState): void;
  /** A finished job's state expired after its retention: forget it. */
  onRemoved?(id: string): void;
  /** The server cannot resume from your position: drop every job you hold, a fresh snapshot follows. */
  onReset?(): void;
  /** The operators' console as it is now (watchConsole only): it replaces every earlier one. */
  onConsole?(snapshot: ConsoleSnapshot): void;
  /** The watch's status changed (see WatchStatus). */
  onStatus?(status: WatchStatus): void;
  /** A malformed event (bad JSON, wrong shape) or a handler's exception: the watch goes on. */
  onError?(error: Error): void;
}

/** A running watch. */
export interface Watch {
  /** close ends the watch (status ended/closed) and its stream at once. */
  close(): void;
  /** Resolves with the status that ended the watch. */
  readonly ended: Promise<WatchEnd>;
  /** The id of the last event seen: where the next connection resumes. */
  readonly lastEventId: string;
}

/** opens one connection of a stream: resume after lastEventId, with a fresh token if refresh. */
export type StreamOpener = (lastEventId: string, refresh: boolean, signal: AbortSignal) => Promise<Response>;

/** Options of a watch. */
export interface WatchOptions {
  /** Close and reopen a stream that sends nothing (not even its 15 s ": ping") for this long; 0 never.
   *  Default 45 000 ms. */
  idleTimeoutMs?: number;
}

/** MalformedEventError describes an event that could not be read; the watch skipped it. */
export class MalformedEventError extends Error {
  override name = "MalformedEventError";
  constructor(
    message: string,
    readonly event: SseEvent,
  ) {
    super(message);
  }
}

/** Options of startWatch. */
interface WatchSetup extends WatchOptions {
  open: StreamOpener;
  position: Position;
  /** A job stream: it ends after this job's terminal state. */
  jobId?: string;
  /** Whether a 401 is worth one more try with a fresh token. */
  canRefresh: boolean;
}

type Outcome = "terminal" | "expired" | "dropped" | "closed";

/** startWatch runs a watch until its stream ends for good or close() is called. */
export function startWatch(setup: WatchSetup, handlers: WatchHandlers): Watch {
  const { open, position, jobId, canRefresh, idleTimeoutMs = 45_000 } = setup;
  const life = new AbortController();
  const seen = new Map<string, number>(); // job id -> the highest revision delivered
  let wake: (() => void) | undefined;
  let finish!: (end: WatchEnd) => void;
  const ended = new Promise<WatchEnd>((ok) => (finish = ok));

  const safely = (fn: () => void) => {
    try {
      fn();
    } catch (err) {
      if (handlers.onError) handlers.onError(err instanceof Error ? err : new Error(String(err)));
    }
  };
  const status = (s: WatchStatus) => safely(() => handlers.onStatus?.(s));
  const malformed = (ev: SseEvent, why: string) =>
    safely(() => handlers.onError?.(new MalformedEventError(`malformed "${ev.event}" event (id ${ev.id ?? "none"}): ${why}`, ev)));
  const sleep = (ms: number) =>
    new Promise<void>((ok) => {
      const timer = setTimeout(ok, ms);
      wake = () => {
        clearTimeout(timer);
        ok();
      };
    });

  // onEvent applies one event; it returns how the stream ends when the event ends it.
  const onEvent = (ev: SseEvent): Outcome | undefined => {
    switch (ev.event) {
      case "state": {
        const job = parse(ev.data);
        if (ev.id) position.set(ev.id);
        if (!isJobState(job)) return void malformed(ev, job === undefined ? "not JSON" : "not a JobState");
        const rev = seen.get(job.id);
        if (rev !== undefined && job.revision <= rev) return undefined; // already delivered
        seen.set(job.id, job.revision);
        safely(() => handlers.onState?.(job));
        return jobId !== undefined && job.id === jobId && isTerminal(job.state) ? "terminal" : undefined;
      }
      case "removed": {
        const d = parse(ev.data) as { id?: unknown } | undefined;
        if (ev.id) position.set(ev.id);
        if (typeof d?.id !== "string") return void malformed(ev, "no job id");
        seen.delete(d.id);
        safely(() => handlers.onRemoved?.(d.id as string));
        return undefined;
      }
      case "reset":
        position.clear();
        seen.clear();
        safely(() => handlers.onReset?.());
        return undefined;
      case "console": {
        const snap = parse(ev.data);
        if (!isConsoleSnapshot(snap)) return void malformed(ev, snap === undefined ? "not JSON" : "not a ConsoleSnapshot");
        safely(() => handlers.onConsole?.(snap));
        return undefined;
      }
      case "expired":
        return "expired";
      default:
        return undefined; // a newer gateway's event: not ours to guess at
    }
  };

  // consume reads one open stream until it ends.
  const consume = async (res: Response, conn: AbortController): Promise<Outcome> => {
    let outcome: Outcome | undefined;
    let idle: ReturnType<typeof setTimeout> | undefined;
    const touch = () => {
      clearTimeout(idle);
      if (idleTimeoutMs > 0) idle = setTimeout(() => conn.abort(), idleTimeoutMs);
    };
    touch();
    try {
      await readEvents(res.body!, (ev) => {
        if (outcome) return;
        outcome = onEvent(ev);
        if (outcome) conn.abort();
      }, touch);
    } catch {
      // aborted (by us, or close()), or the connection broke
    } finally {
      clearTimeout(idle);
    }
    if (life.signal.aborted) return "closed";
    return outcome ?? "dropped";
  };

  const run = async (): Promise<WatchEnd> => {
    await Promise.resolve(); // no handler runs before startWatch has returned
    let failures = 0;
    let refresh = false;
    let refreshed = false; // a fresh token was tried against a 401 since the last open stream
    const wait = async (reason: "dropped" | "expired" | "refused" | "unreachable", delayMs: number, error?: JobwireError) => {
      status(error ? { state: "waiting", reason, delayMs, error } : { state: "waiting", reason, delayMs });
      await sleep(delayMs);
    };
    while (!life.signal.aborted) {
      status({ state: "connecting", attempt: failures });
      const conn = new AbortController();
      const stop = () => conn.abort();
      life.signal.addEventListener("abort", stop);
      try {
        let res: Response;
        try {
          res = await open(position.id, refresh, conn.signal);
        } catch (err) {
          if (life.signal.aborted) break;
          if (err instanceof JobwireError && err.status !== 0) {
            // the token could not be had (e.g. a stream token refused)
            if (err.status === 401 && canRefresh && !refreshed) {
              [refresh, refreshed] = [true, true];
              continue;
            }
            return { state: "ended", reason: err.status === 401 ? "unauthorized" : "refused", error: err };
          }
          await wait("unreachable", backoffDelay(++failures));
          continue;
        }
        refresh = false;
        if (res.status === 204) return { state: "ended", reason: "no-content" };
        if (res.status !== 200 || !res.body) {
          const err = await errorFromResponse(res);
          if (res.status === 401) {
            if (canRefresh && !refreshed) {
              [refresh, refreshed] = [true, true];
              continue;
            }
            return { state: "ended", reason: "unauthorized", error: err };
          }
          if (res.status === 429 || res.status >= 500) {
            await wait("refused", backoffDelay(++failures, err.retryAfter), err);
            continue;
          }
          return { state: "ended", reason: "refused", error: err };
        }
        [failures, refreshed] = [0, false];
        status({ state: "live" });
        const outcome = await consume(res, conn);
        if (outcome === "closed") break;
        if (outcome === "terminal") return { state: "ended", reason: "terminal" };
        if (outcome === "expired") {
          failures = 0;
          refresh = true;
          await wait("expired", expiredDelay());
          continue;
        }
        await wait("dropped", backoffDelay(++failures));
      } finally {
        life.signal.removeEventListener("abort", stop);
      }
    }
    return { state: "ended", reason: "closed" };
  };

  run().then((end) => {
    status(end);
    if (end.error && end.reason !== "closed") safely(() => handlers.onError?.(end.error!));
    finish(end);
  });

  return {
    close() {
      if (life.signal.aborted) return;
      life.abort();
      wake?.();
    },
    ended,
    get lastEventId() {
      return position.id;
    },
  };
}

function parse(data: string): unknown {
  try {
    return JSON.parse(data);
  } catch {
    return undefined;
  }
}

/** isJobState checks the fields a watch relies on. */
function isJobState(v: unknown): v is JobState {
  if (typeof v !== "object" || v === null) return false;
  const j = v as Partial<JobState>;
  return (
    typeof j.id === "string" &&
    j.id !== "" &&
    typeof j.type === "string" &&
    (JOB_STATES as readonly string[]).includes(j.state as string) &&
    typeof j.revision === "number" &&
    typeof j.progress === "object" &&
    j.progress !== null
  );
}

/** isConsoleSnapshot checks the fields a console relies on. */
function isConsoleSnapshot(v: unknown): v is ConsoleSnapshot {
  if (typeof v !== "object" || v === null) return false;
  const c = v as Partial<ConsoleSnapshot>;
  return Array.isArray(c.gateways) && Array.isArray(c.types) && typeof c.deadLetters === "number" && typeof c.at === "string";
}
