// Where a stream is: the id of the last event it saw, kept in sessionStorage (per tab, across
// reloads) so a reloaded page resumes rather than starting over.

import { positionKey } from "./protocol.js";

/** The part of the Web Storage API a position needs (sessionStorage, or your own). */
export interface PositionStorage {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

/** defaultStorage is the tab's sessionStorage, or null where there is none (Node) or it is blocked. */
export function defaultStorage(): PositionStorage | null {
  try {
    const s = (globalThis as { sessionStorage?: PositionStorage }).sessionStorage;
    return s ?? null;
  } catch {
    return null;
  }
}

/** Position is one stream's last event id, in memory and (when storage is given) in storage. */
export class Position {
  #id = "";
  readonly key: string;
  readonly #storage: PositionStorage | null;

  constructor(storage: PositionStorage | null, jobId?: string, key = positionKey(jobId)) {
    this.#storage = storage;
    this.key = key;
    try {
      this.#id = storage?.getItem(key) ?? "";
    } catch {
      this.#id = ""; // storage blocked: resume in memory only
    }
  }

  /** The last event id seen, "" for none. */
  get id(): string {
    return this.#id;
  }

  /** set records id as the stream's position. */
  set(id: string): void {
    if (!id || id === this.#id) return;
    this.#id = id;
    try {
      this.#storage?.setItem(this.key, id);
    } catch {
      // full or blocked: the position lives in memory
    }
  }

  /** clear forgets the position (after a reset: the server could not resume from it). */
  clear(): void {
    this.#id = "";
    try {
      this.#storage?.removeItem(this.key);
    } catch {
      // blocked
    }
  }
}
