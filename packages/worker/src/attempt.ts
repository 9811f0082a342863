/** One delivery of a job that this worker handles, and the writes it makes. */
import type { JetStreamClient, JetStreamManager } from "@nats-io/jetstream";
import { headers, type MsgHdrs, type NatsConnection } from "@nats-io/nats-core";
import type { Span } from "@opentelemetry/api";
import type { Control } from "./control.js";
import type { Delivery } from "./fetch.js";
import type { JobType } from "./jobtype.js";
import type { Logger } from "./log.js";
import { cancelApplies, encodeEvent, eventMsgId, rfc3339, type JobEvent, type JobMessage } from "./messages.js";
import { cancelSubject, eventSubject, streams } from "./names.js";
import type { ResolvedTypeOptions } from "./options.js";
import { ProgressEmitter } from "./progress.js";
import { retrying } from "./retry.js";
import { endAttemptSpan, injectTrace, recordQueueWait, startAttemptSpan, withSpan, type Otel } from "./trace.js";

/** What an attempt needs of the runner that took it. */
export interface RunnerContext {
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
  jobType: JobType;
  opts: ResolvedTypeOptions;
  workerName: string;
  log: Logger;
  /** Records a running attempt so cancel requests and stop() find it (and aborts it if stop() is handing jobs back). */
  track(a: Attempt): void;
  untrack(a: Attempt): void;
  /** What operators set for the type (paused, rate limit), kept current by a watch. */
  control: Control;
  /** Aborts when the worker stops fetching the type's jobs. */
  fetching: AbortSignal;
  /** `@opentelemetry/api` when it is installed; undefined: nothing is traced. */
  otel?: Otel | undefined;
}

/** A job message in hand: its decoded body, its attempt number and the writes of this attempt. */
export class Attempt {
  /** Aborted with an AbortReason on cancel, timeout or stop. */
  readonly abort = new AbortController();
  readonly progress: ProgressEmitter;
  readonly key: string;
  private progressEvents = 0;
  /** The attempt's span (startSpan), and what its last lifecycle event said, for the span's end. */
  private span: Span | undefined;
  private outcome: string | undefined;
  private code: string | undefined;

  constructor(
    readonly rc: RunnerContext,
    readonly msg: Delivery,
    readonly job: JobMessage,
    /** attempts made before this message + its delivery count */
    readonly number: number,
    /** min(the job's maxAttempts, the type's) */
    readonly max: number,
  ) {
    this.key = `${job.owner}.${job.jobId}`;
    this.progress = new ProgressEmitter(rc.opts.progressIntervalMs, (p) => this.sendProgress(p));
  }

  get requeued(): number {
    return this.job.requeued ?? 0;
  }

  get sinceSeq(): number {
    return this.job.sinceSeq ?? 0;
  }

  /** The attempt's timeout: the job's own (nanoseconds in the message), else the type's. */
  get timeoutMs(): number {
    return this.job.timeout ? this.job.timeout / 1e6 : this.rc.opts.timeoutMs;
  }

  log(level: keyof Logger, msg: string, fields: Record<string, unknown> = {}) {
    this.rc.log[level](msg, { job_type: this.job.type, job: this.job.jobId, attempt: this.number, ...fields });
  }

  /** Fills in the envelope of an event of this attempt; lifecycle events after the start carry the latest progress. */
  event(ev: Partial<JobEvent> & Pick<JobEvent, "type">): JobEvent {
    const carriesProgress = ev.type !== "job.started" && ev.type !== "job.progress";
    return {
      ...ev, v: 1, jobId: this.job.jobId, jobType: this.job.type, owner: this.job.owner, at: rfc3339(new Date()),
      attempt: this.number, progress: ev.progress ?? (carriesProgress ? this.progress.latest : undefined),
    };
  }

  /** Stores an event and waits for its ack, retried (renewing the lease) for up to a minute. */
  async publish(ev: JobEvent, expectLastSeq?: number): Promise<number> {
    const h = this.traceHeaders();
    h.set("Jobwire-Event", ev.type);
    const body = encodeEvent(ev);
    const expect = expectLastSeq === undefined ? {} : { lastSubjectSequence: expectLastSeq };
    const ack = await this.retry(() => this.rc.js.publish(eventSubject(ev.owner, ev.jobId), body, { headers: h, msgID: eventMsgId(ev, this.requeued), expect }));
    if (ev.type === "job.completed" || ev.type === "job.failed" || ev.type === "job.cancelled") {
      this.outcome = ev.type;
      this.code = ev.error?.code;
    }
    return ack.seq;
  }

  /** Headers for a write of this attempt: the trace context of its span once it has one, else none. */
  traceHeaders(h: MsgHdrs = headers()): MsgHdrs {
    if (this.span && this.rc.otel) injectTrace(this.rc.otel, this.span, h);
    return h;
  }

  /** Starts the attempt's span (once, and only with the OpenTelemetry API), before job.started is written. */
  startSpan(): void {
    if (this.span || !this.rc.otel) return;
    const t = { subject: this.msg.subject, headers: this.msg.headers, job: this.job, number: this.number };
    this.span = startAttemptSpan(this.rc.otel, t);
    const info = this.msg.info;
    if (this.span.isRecording() && info?.deliveryCount === 1 && info.storedAtMs > 0) {
      recordQueueWait(this.rc.otel, t, info.storedAtMs, info.streamSequence);
    }
  }

  /** Ends the attempt's span, if it has one, with its outcome. */
  endSpan(): void {
    if (!this.span || !this.rc.otel) return;
    endAttemptSpan(this.rc.otel, this.span, this.outcome, this.code);
    this.span = undefined;
  }

  /** Runs fn (the handler) with the attempt's span active, so the spans it starts join the job's trace. */
  inSpan<T>(fn: () => T): T {
    return this.span && this.rc.otel ? withSpan(this.rc.otel, this.span, fn) : fn();
  }

  /** Runs a write for this job for up to a minute, renewing its lease between tries. */
  retry<T>(op: () => Promise<T>): Promise<T> {
    return retrying(op, { onRetry: () => this.msg.working() });
  }

  /** The job's last event and its sequence (one direct get), or undefined when it has none. */
  async lastEvent(): Promise<{ event: JobEvent; seq: number } | undefined> {
    const m = await this.retry(() => this.rc.jsm.direct.getMessage(streams.events, { last_by_subj: eventSubject(this.job.owner, this.job.jobId) }));
    if (!m) return undefined;
    let event: JobEvent;
    try {
      event = m.json<JobEvent>();
    } catch {
      event = { type: "job.submitted" } as JobEvent; // a malformed last event decides nothing: run
    }
    return { event, seq: m.seq };
  }

  /** Whether JOB_CANCELS holds a cancel request for this run of the job. */
  async cancelRequested(retry = true): Promise<boolean> {
    const get = () => this.rc.jsm.direct.getMessage(streams.cancels, { last_by_subj: cancelSubject(this.job.owner, this.job.jobId) });
    try {
      const m = retry ? await this.retry(get) : await get();
      return m !== null && cancelApplies(m.data, this.sinceSeq);
    } catch (err) {
      this.log("warn", "read cancel request", { err });
      return false;
    }
  }

  private sendProgress(p: JobEvent["progress"]) {
    const ev = this.event({ type: "job.progress", progress: p });
    const h = this.traceHeaders();
    h.set("Jobwire-Event", ev.type);
    this.progressEvents++;
    this.rc.js
      .publish(eventSubject(ev.owner, ev.jobId), encodeEvent(ev), { headers: h, msgID: eventMsgId(ev, this.requeued, this.progressEvents) })
      .catch((err) => this.log("warn", "publish progress", { err }));
  }
}
