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

export const queueSubject = (type: string) => `jobs.queue.${type}`;
export const scheduleSubject = (jobId: string) => `jobs.schedule.${jobId}`;
export const eventSubject = (owner: string, jobId: string) => `jobs.events.${owner}.${jobId}`;
export const cancelSubject = (owner: string, jobId: string) => `jobs.cancel.${owner}.${jobId}`;
export const deadLetterSubject = (owner: string, jobId: string) => `jobs.dlq.${owner}.${jobId}`;
export const malformedSubject = (seq: number) => `jobs.dlq._malformed.${seq}`;
export const kvSubject = (key: string) => `$KV.${bucketJobTypes}.${key}`;

/** The durable consumer of a type: `_` doubled, `.` as `_` (`a_b.c` → `worker-a__b_c`). */
export const consumerName = (type: string) => "worker-" + type.replaceAll("_", "__").replaceAll(".", "_");

/** Splits `jobs.cancel.<owner>.<jobId>`; undefined for anything else. */
export function parseCancelSubject(subject: string): { owner: string; jobId: string } | undefined {
  const p = subject.split(".");
  if (p.length !== 4 || p[0] !== "jobs" || p[1] !== "cancel" || !validOwner(p[2]) || !validJobId(p[3])) return undefined;
  return { owner: p[2], jobId: p[3] };
}
