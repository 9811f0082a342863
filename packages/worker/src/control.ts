/** What operators set for a job type: `control.<type>` in JOB_TYPES (docs/protocol.md §7). */
import type { KV, KvEntry } from "@nats-io/kv";
import { parseDuration } from "./duration.js";
import type { Logger } from "./log.js";
import { controlKey, validJobType } from "./names.js";

/** A type's rate limit: at most `limit` starts in any window of `intervalMs`, over every worker. */
export interface RateLimit {
  limit: number;
  intervalMs: number;
}

/** The part of a control entry a worker acts on; the zero value is "running, unlimited". */
export interface Controls {
  paused: boolean;
  pausedBy?: string;
  rateLimit?: RateLimit;
}

/** The highest version of JOB_TYPES entries this SDK reads. */
const registryVersion = 1;

/** Decodes and checks a control entry as the Go SDK does (streams.ControlEntry), throwing for one it would refuse. */
export function decodeControl(data: Uint8Array): Controls {
  const e = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(data));
  if (e === null || typeof e !== "object" || Array.isArray(e)) throw new Error("not an object");
  if (!(Number.isInteger(e.v) && e.v >= 1 && e.v <= registryVersion)) throw new Error(`control entry version ${e.v} not supported (max ${registryVersion})`);
  if (!validJobType(e.type)) throw new Error(`control entry: invalid job type ${JSON.stringify(e.type)}`);
  if (e.paused !== undefined && e.paused !== null && typeof e.paused !== "boolean") throw new Error("control entry: paused is not a boolean");
  const out: Controls = { paused: e.paused === true, pausedBy: typeof e.pausedBy === "string" ? e.pausedBy : undefined };
  if (e.rateLimit !== undefined && e.rateLimit !== null) {
    const { limit, interval } = e.rateLimit;
    if (!(Number.isInteger(limit) && limit >= 1 && limit <= 100_000)) throw new Error(`rate limit: limit must be 1..100000, got ${limit}`);
    if (typeof interval !== "string") throw new Error("rate limit: interval is not a duration string");
    const intervalMs = parseDuration(interval);
    if (!(intervalMs >= 1000 && intervalMs <= 24 * 3_600_000)) throw new Error(`rate limit: interval must be 1s..24h0m0s, got ${interval}`);
    out.rateLimit = { limit, intervalMs };
  }
  return out;
}

/**
 * Keeps a type's control entry current through a KV watch of its key, so a pause or a rate limit
 * reaches every worker at once, without polling. A missing or deleted entry is "running, unlimited";
 * one that cannot be read changes nothing.
 */
export class Control {
  private entry: Controls = { paused: false };
  private revision = 0;
  private changed!: Promise<void>;
  private fire!: () => void;
  private watcher: { stop(): void } | undefined;

  constructor(private readonly type: string, private readonly log: Logger) {
    this.renew();
  }

  /** The entry now, and a promise that resolves at its next change. */
  current(): { entry: Controls; changed: Promise<void> } {
    return { entry: this.entry, changed: this.changed };
  }

  /**
   * Opens the watch of the type's key and resolves once its current value is known, so a worker of a
   * paused type fetches nothing from its start. The watch is opened first and the value read after it,
   * so no change falls between the two; what the watch brings that is not newer is skipped.
   */
  async watch(kv: KV): Promise<void> {
    const key = controlKey(this.type);
    const w = await kv.watch({ key });
    this.watcher = w;
    const now = await kv.get(key);
    if (now) this.apply(now);
    (async () => {
      for await (const e of w) this.apply(e);
    })().catch((err) => this.log.warn("watch control entry", { key, err }));
  }

  stop(): void {
    this.watcher?.stop();
  }

  /** Resolves true at once while the type runs; while it is paused, at its resume (true) or when `stopped` aborts (false). */
  async waitRunning(stopped: AbortSignal): Promise<boolean> {
    for (;;) {
      if (stopped.aborted) return false;
      const { entry, changed } = this.current();
      if (!entry.paused) return true;
      const stop = untilAborted(stopped);
      await Promise.race([changed, stop.promise]);
      stop.cancel();
    }
  }

  private apply(e: KvEntry) {
    if (e.revision <= this.revision) return; // read already (the watch's first value is the one read at start)
    this.revision = e.revision;
    let next: Controls = { paused: false };
    if (e.operation === "PUT") {
      try {
        next = decodeControl(e.value);
      } catch (err) {
        this.log.warn("ignoring a control entry", { key: e.key, err });
        return;
      }
    }
    const was = this.entry.paused;
    this.entry = next;
    const fire = this.fire;
    this.renew();
    fire();
    if (next.paused && !was) this.log.info("job type paused by an operator: fetching no jobs (running ones finish)", { job_type: this.type, by: next.pausedBy });
    if (!next.paused && was) this.log.info("job type resumed: fetching jobs again", { job_type: this.type });
  }

  private renew() {
    this.changed = new Promise<void>((r) => (this.fire = r));
  }
}

/** A promise that resolves when signal aborts (at once if it has); cancel() removes its listener. */
export function untilAborted(signal: AbortSignal): { promise: Promise<void>; cancel(): void } {
  let listener = () => {};
  const promise = new Promise<void>((r) => {
    listener = () => r();
    if (signal.aborted) r();
    else signal.addEventListener("abort", listener, { once: true });
  });
  return { promise, cancel: () => signal.removeEventListener("abort", listener) };
}
