// The shapes of jobwire's HTTP API (api/job.go, api/openapi.yaml).

/** The states of a job, in the order of its life. */
export const JOB_STATES = ["queued", "active", "completed", "failed", "cancelled"] as const;

/** Where a job is: queued and active jobs may still change; the other three are terminal. */
export type JobStateName = (typeof JOB_STATES)[number];

/** The terminal states: once a job reaches one, only an explicit retry changes it again. */
export const TERMINAL_STATES: readonly JobStateName[] = ["completed", "failed", "cancelled"];

/** isTerminal reports whether state is completed, failed or cancelled (api.State.Terminal). */
export function isTerminal(state: string): boolean {
  return state === "completed" || state === "failed" || state === "cancelled";
}

/** How far a running job has come; percent is 0..100, derived from done and total. */
export interface Progress {
  done: number;
  total: number;
  percent: number;
  message?: string;
}

/** Why a job failed: code is stable and machine-readable, message is for people. */
export interface JobError {
  code: string;
  message: string;
}

/** The latest state of one job. revision grows across all jobs and is the stream's event id. */
export interface JobState<Result = unknown> {
  id: string;
  type: string;
  name?: string;
  state: JobStateName;
  progress: Progress;
  result: Result | null;
  error: JobError | null;
  attempt: number;
  createdAt: string;
  updatedAt: string;
  startedAt?: string;
  finishedAt?: string;
  runAt?: string;
  /** The job's priority level; absent for normal. */
  priority?: "high" | "low";
  revision: number;
  eventSeq: number;
}

/** What to run: a registered type and its input (checked against the type's JSON Schema). */
export interface SubmitRequest<Input = unknown> {
  type: string;
  input: Input;
}

/** Options of a submission. */
export interface SubmitOptions {
  /** The same key and user within 24 h answer with the same job (200) instead of a new one. */
  idempotencyKey?: string;
  /** Start no earlier than this (a Date or RFC 3339 text), at most 6 days ahead. */
  runAt?: Date | string;
  /** Bounds each attempt instead of the type's timeout: a Go duration such as "90s", 1 s to 24 h. */
  timeout?: string;
  /** This job's attempt limit: 1 to its type's. */
  maxAttempts?: number;
  /** While your job of this type made with this key is unfinished, answer it (200) instead of a new one. */
  uniqueKey?: string;
  /** How long uniqueKey holds at most: a Go duration, 1 s to 24 h (default 1 h). */
  uniqueFor?: string;
  /** The job's level (default normal): the type's workers take waiting high jobs first, then normal, then low. */
  priority?: Priority;
}

/** A job's priority level. */
export type Priority = "high" | "normal" | "low";

/** A submission and whether it made a new job (202) or matched an idempotency key (200). */
export interface Submitted<Result = unknown> {
  job: JobState<Result>;
  created: boolean;
}

/** One item of a batch: a submission with its own options. */
export type BatchItem<Input = unknown> = SubmitRequest<Input> & SubmitOptions;

/** What became of one batch item: 202 or 200 with the job, or the error a single submit would get. */
export type BatchResult =
  | { status: 200 | 202; job: JobState; error?: undefined }
  | { status: number; job?: undefined; error: { code: string; message: string } };

/** A page of jobs, newest first; nextCursor is absent on the last page. */
export interface JobList {
  jobs: JobState[];
  nextCursor?: string;
}

/** One event of a job's history (JOB_EVENTS); fields beyond these depend on type. */
export interface JobEvent {
  v: number;
  type: string;
  jobId: string;
  jobType: string;
  at: string;
  seq: number;
  attempt?: number;
  [field: string]: unknown;
}

/** A page of a job's events, oldest first. */
export interface History {
  events: JobEvent[];
  nextCursor?: string;
}

/** A registered job type (GET /v1/job-types). */
export interface JobType {
  name: string;
  description?: string;
  schema: unknown;
  schemaHash: string;
  options: {
    maxInFlight: number;
    maxAttempts: number;
    timeout: string;
    ackWait: string;
    backoffBase: string;
    backoffMax: string;
  };
  online: boolean;
  workers: { id: string; concurrency: number; schemaHash: string; sdk?: string; startedAt: string }[];
  registeredAt: string;
  /** An operator paused the type: its workers take no job until it is resumed. */
  paused: boolean;
  pausedAt?: string;
  pausedBy?: string;
  rateLimit?: RateLimit;
}

/** A cluster-wide cap on a job type's starts: at most limit in any window of interval (a Go duration). */
export interface RateLimit {
  limit: number;
  interval: string;
}

/** One imported track of the caller's library. */
export interface Track {
  key: string;
  artist: string;
  title: string;
  album?: string;
  durationSec?: number;
  jobId: string;
  addedAt: string;
}

/** A page of the library, ordered by key. */
export interface TrackList {
  tracks: Track[];
  nextCursor?: string;
}

/** A short-lived token that opens streams only (POST /v1/stream-tokens). */
export interface StreamToken {
  token: string;
  expiresAt: string;
}

/** Who the caller's token speaks for (GET /v1/session): operators may open the console. */
export interface Session {
  user: string;
  operator: boolean;
  expiresAt: string;
}

/** One gateway process, as the console shows it. */
export interface ConsoleGateway {
  id: string;
  host: string;
  addr: string;
  /** Its open SSE streams of every kind; consoleStreams those of the console. */
  openStreams: number;
  consoleStreams: number;
}

/** One job type's numbers in the console (api.ConsoleJobType). */
export interface ConsoleJobType {
  type: string;
  /** Queued excludes scheduled (a runAt or a retry's backoff still ahead). */
  queued: number;
  scheduled: number;
  active: number;
  /** Finished jobs still in JOB_STATE (the state's retention, 24 h). */
  completed: number;
  failed: number;
  cancelled: number;
  deadLettered: number;
  /** Per second, over the last 10 s. */
  startedPerSec: number;
  finishedPerSec: number;
  workersOnline: number;
  paused: boolean;
  rateLimit?: RateLimit;
}

/** The whole console as one gateway sees it: the data of a console event. */
export interface ConsoleSnapshot {
  /** The gateway that sent it first, then every other one. */
  gateways: ConsoleGateway[];
  types: ConsoleJobType[];
  /** Every dead letter, malformed ones included. */
  deadLetters: number;
  at: string;
}

/** A job that failed for good, or a queued message that was never a job (malformed). */
export interface DeadLetter {
  /** <owner>.<jobId>, or _malformed.<seq>: what retry and purge take. */
  key: string;
  seq: number;
  jobId?: string;
  owner?: string;
  type?: string;
  error: JobError;
  attempts?: number;
  deadAt: string;
  malformed?: boolean;
  queueSubject?: string;
}

/** A page of dead letters, oldest first; nextCursor is absent on the last page. */
export interface DeadLetterList {
  deadLetters: DeadLetter[];
  nextCursor?: string;
}

/** Which dead letters: by type, error code and when they died (since inclusive, until exclusive). */
export type DeadLetterFilter = {
  type?: string;
  code?: string;
  since?: string;
  until?: string;
};

/** What a retry or purge acts on: up to 1,000 keys, or a filter. */
export type DeadLetterSelection = { keys: string[]; filter?: undefined } | { filter: DeadLetterFilter; keys?: undefined };

/** What a retry or purge did to one dead letter: 200 (with the re-queued job for a retry), 404, 409, 503. */
export interface DeadLetterResult {
  key: string;
  status: number;
  job?: JobState;
  error?: { code: string; message: string };
}
