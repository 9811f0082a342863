/** Subjects, keys and the validation of what reaches them (docs/protocol.md §1). */

export const streams = { jobs: "JOBS", events: "JOB_EVENTS", deadLetters: "JOBS_DLQ", cancels: "JOB_CANCELS", jobTypes: "KV_JOB_TYPES" } as const;
export const bucketJobTypes = "JOB_TYPES";
export const cancelWildcard = "jobs.cancel.>";

const jobTypePattern = /^[a-z][a-z0-9_]{0,31}(\.[a-z][a-z0-9_]{0,31}){0,3}$/;
const ulidPattern = /^[0-9A-HJKMNP-TV-Z]{26}$/;
const ownerPattern = /^(?:[A-Za-z0-9-]|_[0-9A-F]{2})+$/;

export const validJobType = (t: unknown): t is string => typeof t === "string" && jobTypePattern.test(t);
export const validJobId = (id: unknown): id is string => typeof id === "string" && ulidPattern.test(id);
export const validOwner = (o: unknown): o is string => typeof o === "string" && ownerPattern.test(o);

/** A job's priority level as job messages and events carry it: "high" or "low", absent (or "normal") for normal. */
export type Priority = "high" | "normal" | "low";

/** The levels, highest first; "" is normal. */
export const priorities = ["high", "", "low"] as const;
export type Level = (typeof priorities)[number];

/** Whether p is a level a job message may carry (absent: normal). */
export const validPriority = (p: unknown): p is Priority | undefined => p === undefined || p === null || p === "" || p === "high" || p === "normal" || p === "low";

/** The level of a priority: "" for normal. */
export const levelOf = (p: Priority | "" | null | undefined): Level => (p === "high" || p === "low" ? p : "");

export const queueSubject = (type: string) => `jobs.queue.${type}`;
/** The queue subject of a level: `jobs.queue.<type>` for normal, `jobs.queue.<type>._high` / `._low` for the others. */
export const queueSubjectAt = (type: string, p: Priority | "" | null | undefined) => {
  const l = levelOf(p);
  return l ? `${queueSubject(type)}._${l}` : queueSubject(type);
};
export const scheduleSubject = (jobId: string) => `jobs.schedule.${jobId}`;
export const eventSubject = (owner: string, jobId: string) => `jobs.events.${owner}.${jobId}`;
export const cancelSubject = (owner: string, jobId: string) => `jobs.cancel.${owner}.${jobId}`;
export const deadLetterSubject = (owner: string, jobId: string) => `jobs.dlq.${owner}.${jobId}`;
export const malformedSubject = (seq: number) => `jobs.dlq._malformed.${seq}`;
export const kvSubject = (key: string) => `$KV.${bucketJobTypes}.${key}`;

/** A type as one name token: `_` doubled, `.` as `_` (`a_b.c` → `a__b_c`), so no two types share one. */
export const typeToken = (type: string) => type.replaceAll("_", "__").replaceAll(".", "_");

/** The durable consumer of a type's normal level: `worker-<type token>`. */
export const consumerName = (type: string) => "worker-" + typeToken(type);
/** The durable consumer of a level: `worker-<type token>` for normal, with `-high` / `-low` for the others. */
export const consumerNameAt = (type: string, p: Priority | "" | null | undefined) => {
  const l = levelOf(p);
  return l ? `${consumerName(type)}-${l}` : consumerName(type);
};

/** The start tickets of a rate-limited type: stream `JOBS_RATE_<type token>`, subject `jobs.rate.<type>` (§7). */
export const rateStream = (type: string) => "JOBS_RATE_" + typeToken(type);
export const rateSubject = (type: string) => `jobs.rate.${type}`;
/** The JOB_TYPES key of what operators set for a type. */
export const controlKey = (type: string) => `control.${type}`;

/** Splits `jobs.cancel.<owner>.<jobId>`; undefined for anything else. */
export function parseCancelSubject(subject: string): { owner: string; jobId: string } | undefined {
  const p = subject.split(".");
  if (p.length !== 4 || p[0] !== "jobs" || p[1] !== "cancel" || !validOwner(p[2]) || !validJobId(p[3])) return undefined;
  return { owner: p[2], jobId: p[3] };
}
