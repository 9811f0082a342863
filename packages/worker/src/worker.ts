/** The Worker: one process serving one or more job types. */
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import type { NatsConnection, Subscription } from "@nats-io/nats-core";
import { connect, credsAuthenticator } from "@nats-io/transport-node";
import { readFile } from "node:fs/promises";
import { ulid } from "ulid";
import type { Attempt } from "./attempt.js";
import { AbortReason } from "./errors.js";
import type { JobType } from "./jobtype.js";
import { jsonLogger, type Logger } from "./log.js";
import { cancelApplies } from "./messages.js";
import { bucketJobTypes, cancelWildcard, parseCancelSubject, streams } from "./names.js";
import {
  defaultName, defaultPresenceTtlMs, defaultShutdownGraceMs, resolveTypeOptions, validateTypeOptions,
  type EnvConnection, type WorkerSettings,
} from "./options.js";
import { Presence } from "./registry.js";
import { Runner, type BaseRunnerContext } from "./runner.js";
import { loadTracing, type Otel } from "./trace.js";

export interface WorkerOptions extends WorkerSettings {
  /** An open NATS connection; the Worker never closes it. Or give `servers`. */
  connection?: NatsConnection;
  /** NATS servers to connect to (with `user`/`pass` or `credsFile`); the Worker closes this connection when it stops. */
  servers?: string | string[];
  user?: string;
  pass?: string;
  credsFile?: string;
  /** Where the Worker logs. Default: JSON lines on stderr. */
  logger?: Logger;
}

/**
 * Runs the job types registered with it: takes jobs from their JOBS queues (never more than it can
 * run now), writes their events to JOB_EVENTS and registers the types in JOB_TYPES.
 *
 * Delivery is at least once: a job leaves its queue only when the worker acks it, and it acks only
 * after the job's terminal event is stored. A job whose worker dies is redelivered after its lease
 * (ackWait); a lost ack makes a finished job's message come back, and the worker then sees its terminal
 * event and runs nothing. Make handlers' effects idempotent (keyed by job.id).
 */
export class Worker {
  /** This process's id in the registry (a ULID). */
  readonly id = ulid();
  readonly name: string;
  private readonly log: Logger;
  private readonly types: JobType[] = [];
  private readonly active = new Map<string, Attempt>();
  private runners: Runner[] = [];
  private nc: NatsConnection | undefined;
  private ownsConnection = false;
  private presence: Presence | undefined;
  private cancelSub: Subscription | undefined;
  private handBack = false;
  private state: "new" | "started" | "stopped" = "new";
  private stopping: Promise<void> | undefined;

  constructor(private readonly options: WorkerOptions = {}) {
    this.name = options.name || defaultName();
    this.log = options.logger ?? jsonLogger;
  }

  /** Adds a job type before start(), checking its options at once. */
  register(jobType: JobType<any, any>): this {
    if (this.state !== "new") throw new Error(`register ${jobType.type}: the worker has started`);
    if (this.types.some((t) => t.type === jobType.type)) throw new Error(`register ${jobType.type}: registered twice`);
    validateTypeOptions(resolveTypeOptions(jobType.options, this.options.defaults));
    this.types.push(jobType);
    return this;
  }

  /**
   * Waits for the jobwire topology (retrying while it does not exist), subscribes to cancel requests,
   * ensures each type's three consumers (one per priority level), loads what operators set for it
   * (paused, rate limit), registers the types and starts taking jobs. With `@opentelemetry/api`
   * installed (loaded here, once), each attempt is traced on the global tracer provider.
   */
  async start(): Promise<void> {
    if (this.state !== "new") throw new Error("worker: start called twice");
    if (!this.types.length) throw new Error("worker: no job type registered");
    this.state = "started";
    const nc = (this.nc = await this.connect());
    const js = jetstream(nc);
    const jsm = await jetstreamManager(nc);
    await this.awaitTopology(jsm);
    this.cancelSub = nc.subscribe(cancelWildcard, { callback: (err, m) => {
      if (!err) this.onCancel(m.subject, m.data);
    } });
    const served = this.types.map((jobType) => ({ jobType, opts: resolveTypeOptions(jobType.options, this.options.defaults) }));
    const kv = await new Kvm(nc).open(bucketJobTypes);
    const otel = await loadTracing();
    this.runners = served.map(({ jobType, opts }) => new Runner(this.runnerContext(nc, js, jsm, jobType, opts, otel)));
    for (const r of this.runners) await r.start(kv);
    const ttlMs = this.options.presenceTtlMs || defaultPresenceTtlMs;
    this.presence = new Presence(js, { id: this.id, name: this.name, ttlMs, log: this.log }, served);
    await this.presence.start();
    this.log.info("worker started", { worker: this.name, id: this.id, types: this.types.length });
  }

  /**
   * Stops taking jobs and leaves the registry at once, lets running jobs finish for the shutdown grace
   * (default 25 s), then aborts the rest (reason `stopping`) and hands them back with a Nak without
   * delay, so another worker starts them at once. Resolves when every job has settled. Safe to call twice.
   */
  stop(): Promise<void> {
    this.stopping ??= this.shutdown();
    return this.stopping;
  }

  /** start(), then stop() on SIGTERM or SIGINT; resolves once stopped. */
  async run(): Promise<void> {
    await this.start();
    await new Promise<void>((resolve) => {
      const onSignal = () => {
        process.off("SIGTERM", onSignal).off("SIGINT", onSignal);
        resolve();
      };
      process.on("SIGTERM", onSignal).on("SIGINT", onSignal);
    });
    await this.stop();
  }

  private async shutdown(): Promise<void> {
    if (this.state !== "started") {
      this.state = "stopped";
      return;
    }
    this.state = "stopped";
    await this.presence?.stop();
    await Promise.all(this.runners.map((r) => r.stopFetching()));
    const idle = Promise.all(this.runners.map((r) => r.idle()));
    const graceMs = this.options.shutdownGraceMs ?? defaultShutdownGraceMs;
    let timer: NodeJS.Timeout | undefined;
    const graceOver = new Promise<boolean>((r) => (timer = setTimeout(() => r(true), graceMs)));
    if (await Promise.race([idle.then(() => false), graceOver])) {
      this.handBack = true;
      for (const a of this.active.values()) a.abort.abort(new AbortReason("stopping"));
      await idle;
    }
    clearTimeout(timer);
    this.cancelSub?.unsubscribe();
    if (this.ownsConnection) await this.nc?.drain();
    this.log.info("worker stopped", { worker: this.name });
  }

  private async connect(): Promise<NatsConnection> {
    if (this.options.connection) return this.options.connection;
    const { servers = "nats://127.0.0.1:4222", user, pass, credsFile } = this.options;
    const authenticator = credsFile ? credsAuthenticator(await readFile(credsFile)) : undefined;
    this.ownsConnection = true;
    return connect({ servers, user, pass, authenticator, name: this.name, maxReconnectAttempts: -1 });
  }

  /** Waits until jobwire's streams and bucket exist: a worker never creates them. */
  private async awaitTopology(jsm: JetStreamManager) {
    for (let wait = 1000; ; wait = Math.min(wait * 2, 10_000)) {
      try {
        for (const s of [streams.jobs, streams.events, streams.cancels, streams.deadLetters, streams.jobTypes]) await jsm.streams.info(s);
        return;
      } catch (err) {
        this.log.warn("jobwire topology not found, retrying (is jobwire running against this NATS?)", { err, in_ms: wait, bucket: bucketJobTypes });
        await new Promise((r) => setTimeout(r, wait));
      }
    }
  }

  private runnerContext(nc: NatsConnection, js: JetStreamClient, jsm: JetStreamManager, jobType: JobType, opts: BaseRunnerContext["opts"], otel: Otel | undefined): BaseRunnerContext {
    return {
      nc, js, jsm, jobType, opts, workerName: this.name, log: this.log, otel,
      track: (a) => {
        this.active.set(a.key, a);
        if (this.handBack) a.abort.abort(new AbortReason("stopping"));
      },
      untrack: (a) => {
        if (this.active.get(a.key) === a) this.active.delete(a.key);
      },
    };
  }

  private onCancel(subject: string, data: Uint8Array) {
    const job = parseCancelSubject(subject);
    const a = job && this.active.get(`${job.owner}.${job.jobId}`);
    if (a && !a.abort.signal.aborted && cancelApplies(data, a.sinceSeq)) a.abort.abort(new AbortReason("cancelled"));
  }
}

/** Options for a Worker from the environment (see optionsFromEnv), with its connection settings. */
export function workerOptions(settings: WorkerSettings & { connection: EnvConnection }): WorkerOptions {
  const { connection, ...rest } = settings;
  return { ...rest, servers: connection.servers, user: connection.user, pass: connection.pass, credsFile: connection.credsFile };
}
