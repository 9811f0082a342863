// @jobwire/client: submit jobwire jobs and watch them live, in browsers and Node.js.

export { JobwireClient, type ClientOptions, type ConsoleHandlers, type JobWatchOptions, type TokenSource } from "./client.js";
export { JobwireError } from "./errors.js";
export { JobsStore, type JobsSnapshot } from "./store.js";
export { MalformedEventError, type Watch, type WatchEnd, type WatchHandlers, type WatchOptions, type WatchStatus } from "./watch.js";
export { CONSOLE_EVENTS, POSITION_KEY, QUERY_LAST_EVENT_ID, STREAM_EVENTS, positionKey, type StreamEventName } from "./protocol.js";
export type { PositionStorage } from "./position.js";
export { BASE_BACKOFF_MS, MAX_BACKOFF_MS, backoffDelay } from "./backoff.js";
export * from "./types.js";
