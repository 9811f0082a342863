// JobwireClient: the HTTP API of a jobwire gateway, and watches of its streams.

import { JobwireError, errorFromResponse } from "./errors.js";
import { Position, defaultStorage, type PositionStorage } from "./position.js";
import { QUERY_ACCESS_TOKEN, QUERY_LAST_EVENT_ID } from "./protocol.js";
import type {
  BatchItem,
  BatchResult,
  DeadLetterFilter,
  DeadLetterList,
  DeadLetterResult,
  DeadLetterSelection,
  History,
  JobList,
  JobState,
  JobStateName,
  JobType,
  Session,
  StreamToken,
  SubmitOptions,
  SubmitRequest,
  Submitted,
  TrackList,
} from "./types.js";
import { startWatch, type StreamOpener, type Watch, type WatchHandlers, type WatchOptions } from "./watch.js";

/** What a console watch tells: each snapshot, its status and errors. */
export type ConsoleHandlers = Pick<WatchHandlers, "onConsole" | "onStatus" | "onError">;

/** Supplies a token; refresh is true when the last one was refused (401) or its stream expired. */
export type TokenSource = (opts: { refresh: boolean }) => string | Promise<string>;

/** How a JobwireClient reaches its gateway. */
export interface ClientOptions {
  /** The gateway, e.g. "https://jobs.example.com"; "" (the default) is the page's own origin. */
  baseUrl?: string;
  /** A bearer token. Leave it and getToken out where the jobwire_token cookie authenticates. */
  token?: string;
  /** A bearer token, asked for before each request and stream (cache it yourself). */
  getToken?: TokenSource;
  /** How streams authenticate with a token: "header" (Authorization, the default) or "stream-token"
   *  (a POST /v1/stream-tokens token in ?access_token=, for proxies that strip the header). */
  streamAuth?: "header" | "stream-token";
  /** The fetch to use (default: globalThis.fetch). */
  fetch?: typeof fetch;
  /** fetch's credentials mode (default "same-origin": the cookie goes to the page's own origin). */
  credentials?: RequestCredentials;
  /** Where streams keep their position (default: sessionStorage where there is one; null: memory). */
  storage?: PositionStorage | null;
}

/** Options of one request. */
interface RequestOptions {
  body?: unknown;
  headers?: Record<string, string>;
  /** The answer's status, for callers that care which 2xx it was. */
  onStatus?: (status: number) => void;
}

/** Options of a job watch: a WatchOptions, and where to resume. */
export interface JobWatchOptions extends WatchOptions {
  /** Resume after this event id instead of the stored one. */
  lastEventId?: string;
  /** The sessionStorage key of the position (default: positionKey(id) or positionKey()). */
  storageKey?: string;
}

/** A client of one gateway. Every method throws a JobwireError for a refusal. */
export class JobwireClient {
  readonly #base: string;
  readonly #token: TokenSource | undefined;
  readonly #fetch: typeof fetch;
  readonly #credentials: RequestCredentials;
  readonly #storage: PositionStorage | null;
  readonly #streamAuth: "header" | "stream-token";
  /** Only getToken can give a fresh token: a fixed one is not asked twice. */
  readonly #refreshable: boolean;

  constructor(opts: ClientOptions = {}) {
    this.#base = (opts.baseUrl ?? "").replace(/\/+$/, "");
    const { token } = opts;
    this.#token = opts.getToken ?? (token !== undefined ? () => token : undefined);
    this.#fetch = opts.fetch ?? ((...args) => globalThis.fetch(...args));
    this.#credentials = opts.credentials ?? "same-origin";
    this.#storage = opts.storage === undefined ? defaultStorage() : opts.storage;
    this.#streamAuth = opts.streamAuth ?? "header";
    this.#refreshable = opts.getToken !== undefined;
  }

  /** submit starts a job: created is false when its idempotency key matched an earlier job. */
  async submit<Input, Result = unknown>(req: SubmitRequest<Input>, opts: SubmitOptions = {}): Promise<Submitted<Result>> {
    let status = 0;
    const headers: Record<string, string> = opts.idempotencyKey ? { "Idempotency-Key": opts.idempotencyKey } : {};
    const job = await this.request<JobState<Result>>("POST", "/v1/jobs", {
      body: submitBody(req, opts),
      headers,
      onStatus: (s) => (status = s),
    });
    return { job, created: status === 202 };
  }

  /** submitBatch starts up to 1,000 jobs in one request; each item is answered on its own, in order. */
  async submitBatch(items: BatchItem[]): Promise<BatchResult[]> {
    const jobs = items.map((it) => ({ ...submitBody(it, it), ...(it.idempotencyKey ? { idempotencyKey: it.idempotencyKey } : {}) }));
    return (await this.request<{ jobs: BatchResult[] }>("POST", "/v1/jobs/batch", { body: { jobs } })).jobs;
  }

  /** get returns a job's state (404 job_not_found for anyone else's job). */
  get(id: string): Promise<JobState> {
    return this.request("GET", `/v1/jobs/${encodeURIComponent(id)}`);
  }

  /** list returns a page of your jobs, newest first. */
  list(opts: { state?: JobStateName; limit?: number; cursor?: string } = {}): Promise<JobList> {
    return this.request("GET", "/v1/jobs" + query(opts));
  }

  /** cancel cancels a job that has not ended (409 job_finished if it has). */
  async cancel(id: string): Promise<void> {
    await this.request("POST", `/v1/jobs/${encodeURIComponent(id)}/cancel`);
  }

  /** retry re-queues a failed, dead-lettered job. */
  retry(id: string): Promise<JobState> {
    return this.request("POST", `/v1/jobs/${encodeURIComponent(id)}/retry`);
  }

  /** history returns a page of a job's events, oldest first. */
  history(id: string, opts: { limit?: number; cursor?: string } = {}): Promise<History> {
    return this.request("GET", `/v1/jobs/${encodeURIComponent(id)}/history` + query(opts));
  }

  /** jobTypes returns the registered job types. */
  async jobTypes(): Promise<JobType[]> {
    return (await this.request<{ jobTypes: JobType[] }>("GET", "/v1/job-types")).jobTypes;
  }

  /** library returns a page of your imported tracks. */
  library(opts: { limit?: number; cursor?: string } = {}): Promise<TrackList> {
    return this.request("GET", "/v1/library" + query(opts));
  }

  /** createStreamToken returns a 15-minute token that opens streams only (one job's, with jobId). */
  createStreamToken(jobId?: string): Promise<StreamToken> {
    return this.request("POST", "/v1/stream-tokens", { body: jobId ? { jobId } : {} });
  }

  /**
   * watchJob follows one job over GET /v1/jobs/{id}/events: its current state, then every change,
   * until its terminal state (delivered, then the watch ends) or close(). A watch that resumes after
   * the terminal state gets a 204 and ends at once (reason no-content).
   */
  watchJob(id: string, handlers: WatchHandlers, opts: JobWatchOptions = {}): Watch {
    return this.#watch(`/v1/jobs/${encodeURIComponent(id)}/events`, id, handlers, opts);
  }

  /** watchJobs follows all of your jobs over one GET /v1/events stream, until close(). */
  watchJobs(handlers: WatchHandlers, opts: JobWatchOptions = {}): Watch {
    return this.#watch("/v1/events", undefined, handlers, opts);
  }

  /** session says who your token speaks for, and whether it is an operator's. */
  session(): Promise<Session> {
    return this.request("GET", "/v1/session");
  }

  /**
   * watchConsole follows the operators' live console (GET /v1/operator/events, operators only): a
   * snapshot now and another whenever a number changes, until close(). Snapshots are whole, so a
   * reconnect starts from a fresh one (nothing is resumed or kept in storage).
   */
  watchConsole(handlers: ConsoleHandlers, opts: WatchOptions = {}): Watch {
    return this.#watch("/v1/operator/events", undefined, handlers, opts, new Position(null, undefined, "console"));
  }

  /** deadLetters lists a page of dead letters, oldest first (operators). */
  deadLetters(filter: DeadLetterFilter & { limit?: number; cursor?: string } = {}): Promise<DeadLetterList> {
    return this.request("GET", "/v1/dead-letters" + query(filter));
  }

  /** retryDeadLetters re-queues the selected dead letters' jobs, one result each (operators). */
  async retryDeadLetters(sel: DeadLetterSelection): Promise<DeadLetterResult[]> {
    return (await this.request<{ results: DeadLetterResult[] }>("POST", "/v1/dead-letters/retry", { body: sel })).results;
  }

  /** purgeDeadLetters removes the selected dead letters for good; their jobs stay failed (operators). */
  async purgeDeadLetters(sel: DeadLetterSelection): Promise<DeadLetterResult[]> {
    return (await this.request<{ results: DeadLetterResult[] }>("POST", "/v1/dead-letters/purge", { body: sel })).results;
  }

  /** pauseJobType stops every worker of the type from taking jobs; running ones finish (operators). */
  pauseJobType(type: string): Promise<JobType> {
    return this.request("POST", `/v1/job-types/${encodeURIComponent(type)}/pause`);
  }

  /** resumeJobType lets the type's workers take jobs again (operators). */
  resumeJobType(type: string): Promise<JobType> {
    return this.request("POST", `/v1/job-types/${encodeURIComponent(type)}/resume`);
  }

  #watch(
    path: string,
    jobId: string | undefined,
    handlers: WatchHandlers,
    opts: JobWatchOptions,
    position = new Position(this.#storage, jobId, opts.storageKey),
  ): Watch {
    if (opts.lastEventId !== undefined) position.set(opts.lastEventId);
    const open: StreamOpener = async (lastEventId, refresh, signal) => {
      const headers: Record<string, string> = { Accept: "text/event-stream" };
      const q = new URLSearchParams();
      if (lastEventId) q.set(QUERY_LAST_EVENT_ID, lastEventId);
      if (this.#token) {
        const token = await this.#token({ refresh });
        if (this.#streamAuth === "stream-token") {
          const st = await this.request<StreamToken>("POST", "/v1/stream-tokens", { body: jobId ? { jobId } : {}, token });
          q.set(QUERY_ACCESS_TOKEN, st.token);
        } else {
          headers.Authorization = `Bearer ${token}`;
        }
      }
      const qs = q.toString();
      return this.#fetch(this.#base + path + (qs ? `?${qs}` : ""), { headers, credentials: this.#credentials, cache: "no-store", signal });
    };
    return startWatch({ ...opts, open, position, canRefresh: this.#refreshable, ...(jobId !== undefined ? { jobId } : {}) }, handlers);
  }

  /**
   * request sends one request to the gateway and returns its JSON answer (undefined when empty). A 401
   * with getToken is retried once with a fresh token.
   */
  async request<T>(method: string, path: string, opts: RequestOptions & { token?: string } = {}): Promise<T> {
    const send = async (refresh: boolean) => {
      const headers: Record<string, string> = { Accept: "application/json", ...opts.headers };
      const token = opts.token ?? (this.#token ? await this.#token({ refresh }) : undefined);
      if (token) headers.Authorization = `Bearer ${token}`;
      const init: RequestInit = { method, headers, credentials: this.#credentials, cache: "no-store" };
      if (opts.body !== undefined) {
        headers["Content-Type"] = "application/json";
        init.body = JSON.stringify(opts.body);
      }
      try {
        return await this.#fetch(this.#base + path, init);
      } catch (err) {
        throw new JobwireError(0, "network", `${method} ${path}: the server cannot be reached (${(err as Error).message})`);
      }
    };
    let res = await send(false);
    if (res.status === 401 && this.#refreshable && opts.token === undefined) res = await send(true);
    if (!res.ok) throw await errorFromResponse(res);
    opts.onStatus?.(res.status);
    const text = await res.text();
    return (text ? JSON.parse(text) : undefined) as T;
  }
}

/** submitBody is the JSON of a submission. */
function submitBody(req: SubmitRequest, opts: SubmitOptions): Record<string, unknown> {
  const body: Record<string, unknown> = { type: req.type, input: req.input };
  if (opts.runAt !== undefined) body.runAt = opts.runAt instanceof Date ? opts.runAt.toISOString() : opts.runAt;
  if (opts.timeout !== undefined) body.timeout = opts.timeout;
  if (opts.maxAttempts !== undefined) body.maxAttempts = opts.maxAttempts;
  if (opts.uniqueKey !== undefined) body.uniqueKey = opts.uniqueKey;
  if (opts.uniqueFor !== undefined) body.uniqueFor = opts.uniqueFor;
  if (opts.priority !== undefined) body.priority = opts.priority;
  return body;
}

/** query is "?k=v&..." of the options that are set, or "". */
function query(opts: Record<string, string | number | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(opts)) if (v !== undefined && v !== "") q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : "";
}
