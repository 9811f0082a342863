// JobsStore: the jobs a watch knows, kept current, for UIs (React's useSyncExternalStore and others).

import type { JobwireClient } from "./client.js";
import type { JobState } from "./types.js";
import type { Watch, WatchHandlers, WatchStatus } from "./watch.js";

/** An immutable view of a store: a new object after every change, the same one otherwise. */
export interface JobsSnapshot {
  /** The jobs by id. */
  readonly jobs: ReadonlyMap<string, JobState>;
  /** The same jobs, newest first (ids are ULIDs). */
  readonly list: readonly JobState[];
  /** The status of the watch that feeds the store. */
  readonly status: WatchStatus;
}

/**
 * JobsStore holds the latest state of each job. A state only replaces an older one (revisions only
 * grow); a state without a revision (a submit's answer, before the projection wrote it) only fills a
 * gap; a removed job stays removed until a newer state of it arrives.
 */
export class JobsStore {
  #jobs = new Map<string, JobState>();
  #removedAt = new Map<string, number>();
  #status: WatchStatus = { state: "connecting", attempt: 0 };
  #snapshot: JobsSnapshot | undefined;
  #listeners = new Set<() => void>();

  /** subscribe calls listener after every change; it returns the unsubscribe function. */
  subscribe = (listener: () => void): (() => void) => {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  };

  /** getSnapshot returns the current snapshot (the same object until something changes). */
  getSnapshot = (): JobsSnapshot => {
    this.#snapshot ??= {
      jobs: new Map(this.#jobs),
      list: [...this.#jobs.values()].sort((a, b) => (a.id < b.id ? 1 : a.id > b.id ? -1 : 0)),
      status: this.#status,
    };
    return this.#snapshot;
  };

  /** get returns one job's latest state. */
  get(id: string): JobState | undefined {
    return this.#jobs.get(id);
  }

  /** put keeps job unless the store has a newer state of it; it reports whether it changed. */
  put(job: JobState): boolean {
    const rev = job.revision || 0;
    const cur = this.#jobs.get(job.id);
    if (cur && ((cur.revision || 0) > rev || (rev === 0 && cur.revision))) return false;
    const gone = this.#removedAt.get(job.id);
    if (gone !== undefined && rev <= gone) return false;
    this.#jobs.set(job.id, job);
    this.#changed();
    return true;
  }

  /** remove forgets a job; states of it no newer than revision (default: any) are ignored later. */
  remove(id: string, revision = Number.MAX_SAFE_INTEGER): void {
    this.#removedAt.set(id, revision);
    if (this.#jobs.delete(id)) this.#changed();
  }

  /** clear forgets every job (after a reset: a fresh snapshot follows). */
  clear(): void {
    this.#jobs.clear();
    this.#removedAt.clear();
    this.#changed();
  }

  /** setStatus records the feeding watch's status. */
  setStatus(status: WatchStatus): void {
    this.#status = status;
    this.#changed();
  }

  /** handlers are WatchHandlers that keep this store current; extra handlers are called after. */
  handlers(extra: WatchHandlers = {}): WatchHandlers {
    return {
      onState: (job) => {
        this.put(job);
        extra.onState?.(job);
      },
      onRemoved: (id) => {
        this.remove(id);
        extra.onRemoved?.(id);
      },
      onReset: () => {
        this.clear();
        extra.onReset?.();
      },
      onStatus: (s) => {
        this.setStatus(s);
        extra.onStatus?.(s);
      },
      onError: (err) => extra.onError?.(err),
    };
  }

  /** watch feeds the store from client.watchJobs (all your jobs over one stream) until closed. */
  watch(client: JobwireClient, extra?: WatchHandlers): Watch {
    return client.watchJobs(this.handlers(extra));
  }

  #changed(): void {
    this.#snapshot = undefined;
    for (const l of [...this.#listeners]) l();
  }
}
