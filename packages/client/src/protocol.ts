// The stream protocol's names, as in api/stream.go (a Go test checks the page's bundled copy of this
// file against api.StreamEvents and api.ConsoleEvents).

/** Every event the gateway sends on a job stream. */
export const STREAM_EVENTS = ["state", "removed", "reset", "expired"] as const;

/** The name of a stream event. */
export type StreamEventName = (typeof STREAM_EVENTS)[number];

/** Every event the gateway sends on the operators' console stream (GET /v1/operator/events). */
export const CONSOLE_EVENTS = ["console", "expired"] as const;

/** The query parameter that resumes a stream after the given event id. */
export const QUERY_LAST_EVENT_ID = "lastEventId";

/** The query parameter that carries a stream token. */
export const QUERY_ACCESS_TOKEN = "access_token";

/** The sessionStorage key of the all-jobs stream's position; a job stream's is this + ":" + job id. */
export const POSITION_KEY = "jobwire.lastEventId";

/** positionKey is where a stream's last event id is kept: one key per stream (and tab). */
export function positionKey(jobId?: string): string {
  return jobId === undefined ? POSITION_KEY : `${POSITION_KEY}:${jobId}`;
}
