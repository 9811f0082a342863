/** The wire formats: job messages, events and cancel requests, field for field as the Go SDK writes them. */
import { validJobId, validJobType, validOwner, validPriority, type Priority } from "./names.js";

/** The body of a JOBS message (docs/protocol.md §2). Times are kept as their RFC 3339 text. */
export interface JobMessage {
  v: number;
  jobId: string;
  type: string;
  owner: string;
  input: unknown;
  createdAt: string;
  runAt?: string | null;
  name?: string;
  requeued?: number;
  sinceSeq?: number;
  attempts?: number;
  maxAttempts?: number;
  /** nanoseconds */
  timeout?: number;
  /** "high" or "low"; absent: normal. It names the queue subject, and a retry keeps it. */
  priority?: Priority;
}

/** Decodes a job message of `jobType`, throwing an Error that says what is wrong with one that is not. */
export function decodeJobMessage(data: Uint8Array, jobType: string): JobMessage {
  let m: Record<string, unknown>;
  try {
    m = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(data));
  } catch (err) {
    throw new Error(`not a JSON job message: ${(err as Error).message}`);
  }
  if (m === null || typeof m !== "object" || Array.isArray(m)) throw new Error("not a JSON job message: not an object");
  if (!validJobId(m.jobId)) throw new Error(`job message: invalid job id ${JSON.stringify(m.jobId)}`);
  if (!validOwner(m.owner)) throw new Error(`job message: invalid owner token ${JSON.stringify(m.owner)}`);
  if (!validJobType(m.type)) throw new Error(`job message: invalid job type ${JSON.stringify(m.type)}`);
  for (const f of ["v", "requeued", "sinceSeq", "attempts", "maxAttempts", "timeout"]) {
    if (m[f] !== undefined && m[f] !== null && !(Number.isInteger(m[f]) && (m[f] as number) >= 0)) {
      throw new Error(`job message ${m.jobId}: ${f} is not a non-negative integer`);
    }
  }
  for (const f of ["createdAt", "runAt"]) {
    if (m[f] !== undefined && m[f] !== null && (typeof m[f] !== "string" || Number.isNaN(Date.parse(m[f] as string)))) {
      throw new Error(`job message ${m.jobId}: ${f} is not an RFC 3339 time`);
    }
  }
  if (!validPriority(m.priority)) throw new Error(`job message ${m.jobId}: invalid priority ${JSON.stringify(String(m.priority).slice(0, 20))}`);
  if (m.type !== jobType) throw new Error(`job type ${JSON.stringify(m.type)} queued for ${JSON.stringify(jobType)}`);
  return m as unknown as JobMessage;
}

/** Encodes a job message in the Go SDK's field order, zero fields omitted as Go's omitempty does. */
export function encodeJobMessage(m: JobMessage): string {
  return JSON.stringify({
    v: m.v, jobId: m.jobId, type: m.type, owner: m.owner, input: m.input ?? null, createdAt: m.createdAt,
    runAt: m.runAt || undefined, name: m.name || undefined, requeued: m.requeued || undefined,
    sinceSeq: m.sinceSeq || undefined, attempts: m.attempts || undefined,
    maxAttempts: m.maxAttempts || undefined, timeout: m.timeout || undefined, priority: m.priority || undefined,
  });
}

export interface Progress {
  done: number;
  total: number;
  percent: number;
  message?: string;
}

/** A Progress with percent computed from done and total, clamped to 0..100 (as api.NewProgress). */
export function newProgress(done: number, total: number, message?: string): Progress {
  done = Math.trunc(done) || 0; // Go's api.Progress holds ints: a fraction would make the event unreadable to the projector
  total = Math.trunc(total) || 0;
  const percent = total > 0 ? Math.min(Math.max(Math.trunc((done * 100) / total), 0), 100) : 0;
  return { done, total, percent, message: message || undefined };
}

export interface JobError {
  code: string;
  message: string;
}

export type EventType = "job.submitted" | "job.started" | "job.progress" | "job.completed" | "job.failed" | "job.cancelled" | "job.requeued";

/** One JOB_EVENTS event (docs/protocol.md §3). */
export interface JobEvent {
  v: number;
  type: EventType;
  jobId: string;
  jobType: string;
  owner: string;
  at: string;
  attempt?: number;
  name?: string;
  runAt?: string | null;
  priority?: Priority;
  queueSeq?: number;
  worker?: string;
  progress?: Progress;
  result?: unknown;
  error?: JobError;
  final?: boolean;
  retryAt?: string;
}

/** Encodes an event in the Go SDK's field order, omitting what does not apply. */
export function encodeEvent(e: JobEvent): string {
  return JSON.stringify({
    v: e.v, type: e.type, jobId: e.jobId, jobType: e.jobType, owner: e.owner, at: e.at, attempt: e.attempt || undefined,
    name: e.name || undefined, runAt: e.runAt || undefined, priority: e.priority || undefined, queueSeq: e.queueSeq || undefined, worker: e.worker || undefined,
    progress: e.progress, result: e.result, error: e.error, final: e.final || undefined, retryAt: e.retryAt,
  });
}

/** Whether the event ends its job. */
export const isTerminal = (e: JobEvent) => e.type === "job.completed" || e.type === "job.cancelled" || (e.type === "job.failed" && e.final === true);

/** The event's Nats-Msg-Id: `<jobId>:<type>:<requeued>:<attempt>:<n>`. */
export const eventMsgId = (e: JobEvent, requeued: number, n = 0) => `${e.jobId}:${e.type}:${requeued}:${e.attempt ?? 0}:${n}`;

/** A time as Go's encoding/json writes it: RFC 3339 in UTC with trailing zeros of the fraction dropped. */
export function rfc3339(d: Date): string {
  return d.toISOString().replace(/\.(\d*?)0*Z$/, (_, f: string) => (f ? `.${f}Z` : "Z"));
}

/** Whether a cancel request (a JOB_CANCELS body) applies to the run that began at `sinceSeq`. */
export function cancelApplies(data: Uint8Array, sinceSeq: number): boolean {
  let afterSeq = 0;
  try {
    afterSeq = Number(JSON.parse(new TextDecoder().decode(data))?.afterSeq ?? 0) || 0;
  } catch {
    // an unreadable request counts as one decided at the job's start, as in the Go SDK
  }
  return afterSeq >= sinceSeq;
}
