// @jobwire/client/react: hooks over a JobsStore, on React's useSyncExternalStore.
//
//   <JobwireProvider client={client}>   one /v1/events stream for the whole tree
//     useJobs()     -> JobsSnapshot {jobs, list (newest first), status}
//     useJob(id)    -> JobState | undefined
// Without a provider, pass the client: useJobs(client) opens its own /v1/events stream, useJob(id,
// client) its own job stream (mind the 8 streams per user: prefer one provider).

import { createContext, createElement, useContext, useEffect, useState, useSyncExternalStore, type ReactNode } from "react";
import type { JobwireClient } from "./client.js";
import { JobsStore, type JobsSnapshot } from "./store.js";
import type { JobState } from "./types.js";
import type { WatchHandlers } from "./watch.js";

interface Shared {
  client: JobwireClient;
  store: JobsStore;
}

const JobwireContext = createContext<Shared | null>(null);

/** Props of JobwireProvider. */
export interface JobwireProviderProps {
  client: JobwireClient;
  /** The store to feed (default: a new one); pass your own to read it outside React too. */
  store?: JobsStore;
  /** Told about everything the watch sees (e.g. onError for malformed events). */
  handlers?: WatchHandlers;
  children?: ReactNode;
}

/** JobwireProvider watches all of the user's jobs over one stream while it is mounted. */
export function JobwireProvider(props: JobwireProviderProps): ReactNode {
  const { client, handlers } = props;
  const [own] = useState(() => new JobsStore());
  const store = props.store ?? own;
  useEffect(() => {
    const watch = store.watch(client, handlers);
    return () => watch.close();
  }, [client, store, handlers]);
  const [shared, setShared] = useState<Shared>({ client, store });
  if (shared.client !== client || shared.store !== store) setShared({ client, store });
  return createElement(JobwireContext.Provider, { value: shared }, props.children);
}

/** useOwnStore is a store fed by start(client) while the component is mounted (none without client). */
function useOwnStore(client: JobwireClient | undefined, key: string | undefined, start: (c: JobwireClient, s: JobsStore) => { close(): void }): JobsStore | undefined {
  const [store] = useState(() => new JobsStore());
  useEffect(() => {
    if (!client) return undefined;
    store.clear();
    const watch = start(client, store);
    return () => watch.close();
    // start is recreated on every render; client and key say when the watch must change
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [client, key, store]);
  return client ? store : undefined;
}

function useShared(): Shared | null {
  return useContext(JobwireContext);
}

function required<T>(v: T | undefined | null): T {
  if (v === undefined || v === null) throw new Error("@jobwire/client/react: pass a client, or render inside <JobwireProvider client={...}>");
  return v;
}

/**
 * useJobs returns every job of the user, kept current: from the provider's stream, or (given a
 * client) from a stream of its own. It re-renders after each change.
 */
export function useJobs(client?: JobwireClient): JobsSnapshot {
  const shared = useShared();
  const own = useOwnStore(client, "all", (c, s) => s.watch(c));
  const store = required(own ?? shared?.store);
  return useSyncExternalStore(store.subscribe, store.getSnapshot, store.getSnapshot);
}

/**
 * useJob returns one job's latest state, undefined until it is known. Under a provider it reads the
 * provider's store, and asks for the job (GET) when the stream's snapshot does not hold it; given a
 * client it follows the job's own stream, which ends at its terminal state.
 */
export function useJob(id: string, client?: JobwireClient): JobState | undefined {
  const shared = useShared();
  const own = useOwnStore(client, id, (c, s) => c.watchJob(id, s.handlers()));
  const store = required(own ?? shared?.store);
  const get = () => store.get(id);
  const job = useSyncExternalStore(store.subscribe, get, get);
  const fetchFrom = own ? undefined : shared?.client;
  useEffect(() => {
    if (!fetchFrom || store.get(id)) return;
    let live = true;
    fetchFrom.get(id).then(
      (st) => live && store.put(st),
      () => undefined, // not found (or gone): undefined it stays
    );
    return () => {
      live = false;
    };
  }, [fetchFrom, store, id]);
  return job;
}

export type { JobsSnapshot } from "./store.js";
