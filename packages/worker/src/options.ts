/** Options, their defaults (the Go SDK's) and the environment variables that set them. */
import { hostname } from "node:os";
import { parseDuration } from "./duration.js";

/** How a job type runs. Every field is optional; durations are in milliseconds. */
export interface TypeOptions {
  /** Jobs of the type run at once in this process. Default 4 (JOBWIRE_WORKER_CONCURRENCY). */
  concurrency?: number;
  /** Jobs in flight over every worker: the durable consumer's MaxAckPending. Default 10000 (JOBWIRE_WORKER_MAX_IN_FLIGHT). */
  maxInFlight?: number;
  /** One attempt's limit; the attempt then fails with code `timeout`. Default 30 min (JOBWIRE_WORKER_JOB_TIMEOUT). */
  timeoutMs?: number;
  /** Attempts before a job fails for good and is dead-lettered. Default 5 (JOBWIRE_WORKER_MAX_ATTEMPTS). */
  maxAttempts?: number;
  /** The lease, renewed at a third of it while the handler runs. Default 30 s, at least 1 s (JOBWIRE_WORKER_ACK_WAIT). */
  ackWaitMs?: number;
  /** Pause before the first retry, doubled per attempt, with full jitter. Default 1 s (JOBWIRE_WORKER_BACKOFF_BASE). */
  backoffBaseMs?: number;
  /** Longest pause between two attempts. Default 5 min (JOBWIRE_WORKER_BACKOFF_MAX). */
  backoffMaxMs?: number;
  /** Least time between two progress events of a job, and before its first. Default 100 ms (JOBWIRE_PROGRESS_INTERVAL). */
  progressIntervalMs?: number;
  /** A handler that has not returned this long after its signal aborted is abandoned. Default 5 s (JOBWIRE_WORKER_STOP_GRACE). */
  stopGraceMs?: number;
}

export type ResolvedTypeOptions = Required<TypeOptions>;

export const defaultTypeOptions: ResolvedTypeOptions = {
  concurrency: 4,
  maxInFlight: 10_000,
  timeoutMs: 30 * 60_000,
  maxAttempts: 5,
  ackWaitMs: 30_000,
  backoffBaseMs: 1000,
  backoffMaxMs: 5 * 60_000,
  progressIntervalMs: 100,
  stopGraceMs: 5000,
};

/** The process-wide options of a Worker (besides its connection). */
export interface WorkerSettings {
  /** Names this process in job.started events and the registry. Default `<host>-<pid>` (JOBWIRE_WORKER_NAME). */
  name?: string;
  /** How long stop() lets running jobs finish before it hands them back. Default 25 s (JOBWIRE_WORKER_SHUTDOWN_GRACE). */
  shutdownGraceMs?: number;
  /** How long the registry's worker entries outlive a dead process; renewed at a third. Default 15 s, at least 3 s. */
  presenceTtlMs?: number;
  /** Defaults of every registered type; a type's own options win. */
  defaults?: TypeOptions;
}

export const defaultShutdownGraceMs = 25_000;
export const defaultPresenceTtlMs = 15_000;
export const defaultName = () => `${hostname()}-${process.pid}`;

/** Fills the unset options of `own` from `defaults`, then from the package defaults. */
export function resolveTypeOptions(own: TypeOptions = {}, defaults: TypeOptions = {}): ResolvedTypeOptions {
  const out = { ...defaultTypeOptions };
  for (const key of Object.keys(out) as (keyof TypeOptions)[]) {
    out[key] = own[key] || defaults[key] || defaultTypeOptions[key];
  }
  return out;
}

/** Throws for options that cannot work, naming each (the Go SDK's rules). */
export function validateTypeOptions(o: ResolvedTypeOptions): void {
  const errs: string[] = [];
  const check = (bad: boolean, msg: string) => bad && errs.push(msg);
  check(!(o.concurrency >= 1), `concurrency must be at least 1, got ${o.concurrency}`);
  check(!(o.maxInFlight >= 1), `max in flight must be at least 1, got ${o.maxInFlight}`);
  check(!(o.timeoutMs >= 1000), `timeout must be at least 1s, got ${o.timeoutMs}ms`);
  check(!(o.maxAttempts >= 1 && o.maxAttempts <= 1000), `max attempts must be 1..1000, got ${o.maxAttempts}`);
  check(!(o.ackWaitMs >= 1000), `ack wait must be at least 1s, got ${o.ackWaitMs}ms`);
  check(!(o.backoffBaseMs >= 1 && o.backoffMaxMs >= o.backoffBaseMs), "backoff must satisfy 1ms <= base <= max");
  check(o.progressIntervalMs < 0 || o.stopGraceMs < 0, "progress interval and stop grace must not be negative");
  if (errs.length) throw new Error(errs.join("; "));
}

/** NATS connection settings from the environment (NATS_URL, NATS_USER, NATS_PASSWORD, NATS_CREDS). */
export interface EnvConnection {
  servers: string[];
  user?: string;
  pass?: string;
  credsFile?: string;
}

/**
 * Reads the variables the Go SDK reads (worker/env.go): NATS_URL (default nats://127.0.0.1:4222,
 * comma-separated), NATS_USER, NATS_PASSWORD, NATS_CREDS, JOBWIRE_WORKER_NAME,
 * JOBWIRE_WORKER_CONCURRENCY, _MAX_IN_FLIGHT, _JOB_TIMEOUT, _MAX_ATTEMPTS, _ACK_WAIT, _BACKOFF_BASE,
 * _BACKOFF_MAX, _STOP_GRACE, _SHUTDOWN_GRACE and JOBWIRE_PROGRESS_INTERVAL, durations in Go syntax
 * (`2s`, `20ms`). Unset or blank variables keep the defaults; every malformed one is reported in one error.
 */
export function optionsFromEnv(env: NodeJS.ProcessEnv = process.env): WorkerSettings & { connection: EnvConnection } {
  const errs: string[] = [];
  const str = (name: string) => env[name]?.trim() || undefined;
  const read = <T>(name: string, parse: (s: string) => T): T | undefined => {
    const s = str(name);
    if (s === undefined) return undefined;
    try {
      return parse(s);
    } catch {
      errs.push(`${name}=${JSON.stringify(s)}: not ${parse === integer ? "an integer" : "a duration (e.g. 15s, 30m)"}`);
      return undefined;
    }
  };
  const int = (name: string) => read(name, integer);
  const dur = (name: string) => read(name, parseDuration);
  const settings = {
    name: str("JOBWIRE_WORKER_NAME"),
    shutdownGraceMs: dur("JOBWIRE_WORKER_SHUTDOWN_GRACE"),
    defaults: {
      concurrency: int("JOBWIRE_WORKER_CONCURRENCY"),
      maxInFlight: int("JOBWIRE_WORKER_MAX_IN_FLIGHT"),
      timeoutMs: dur("JOBWIRE_WORKER_JOB_TIMEOUT"),
      maxAttempts: int("JOBWIRE_WORKER_MAX_ATTEMPTS"),
      ackWaitMs: dur("JOBWIRE_WORKER_ACK_WAIT"),
      backoffBaseMs: dur("JOBWIRE_WORKER_BACKOFF_BASE"),
      backoffMaxMs: dur("JOBWIRE_WORKER_BACKOFF_MAX"),
      progressIntervalMs: dur("JOBWIRE_PROGRESS_INTERVAL"),
      stopGraceMs: dur("JOBWIRE_WORKER_STOP_GRACE"),
    },
    connection: {
      servers: (str("NATS_URL") ?? "nats://127.0.0.1:4222").split(",").map((s) => s.trim()).filter(Boolean),
      user: str("NATS_USER"),
      pass: str("NATS_PASSWORD"),
      credsFile: str("NATS_CREDS"),
    },
  };
  if (errs.length) throw new Error(errs.join("; "));
  return settings;
}

function integer(s: string): number {
  if (!/^[+-]?\d+$/.test(s)) throw new Error("not an integer");
  return Number(s);
}
