package api

// The SSE protocol of GET /v1/events, GET /v1/jobs/{id}/events, the legacy
// GET /library/sync/{id}/progress and the operators' GET /v1/operator/events, in one place: the gateway
// writes these names and fields, and the Go client, the CLI and the web page read them (a test checks
// the page against these lists).
//
// Every event of a job stream carries an "id:" field that is a JOB_STATE revision (a number increasing
// across the whole bucket), except reset and expired, which carry none. A client that reconnects sends
// the last id it saw as the Last-Event-ID header (browsers do so on their own) or, when it opens a new
// stream itself, as the lastEventId query parameter; the gateway then sends only what changed after it.
// A job stream ends after the job's terminal state (the server closes the connection); a resumed job
// stream whose client already holds the terminal state is answered 204 No Content, which stops an
// EventSource for good. Heartbeats are SSE comments (": ping") every 15 s by default.
const (
	// EventState carries a JobState as its data; its id is the state's revision. On the legacy route
	// the event has no name (the browser's "message" event) and the data is a LegacyProgress.
	EventState = "state"
	// EventRemoved says a job's state left JOB_STATE (retention or deletion); data is StreamRemoved.
	EventRemoved = "removed"
	// EventReset says the stream cannot resume from the client's position: drop every job it holds; a
	// fresh snapshot follows on the same stream. Data is StreamNotice with Reason ResetHistoryGone.
	EventReset = "reset"
	// EventExpired ends a stream at its maximum duration or when the token that opened it expires;
	// reconnect (with a fresh token) and resume. Data is StreamNotice with Reason ExpiredMaxDuration.
	EventExpired = "expired"
	// EventConsole carries a ConsoleSnapshot on the operators' console stream, and only there; it has
	// no id (a snapshot is whole: a reconnect starts with a fresh one).
	EventConsole = "console"
)

// StreamEvents are the names of every event the gateway sends on a job stream.
var StreamEvents = []string{EventState, EventRemoved, EventReset, EventExpired}

// ConsoleEvents are the names of every event the gateway sends on the console stream.
var ConsoleEvents = []string{EventConsole, EventExpired}

// Resume position of a stream.
const (
	// HeaderLastEventID is the request header with the id of the last event a client saw.
	HeaderLastEventID = "Last-Event-ID"
	// QueryLastEventID is the query parameter that does the same for a stream opened by script
	// (EventSource cannot set headers).
	QueryLastEventID = "lastEventId"
)

// Reasons in a StreamNotice.
const (
	// ResetHistoryGone: the client's position is older than what this gateway remembers, from another
	// bucket, or the job's state expired.
	ResetHistoryGone = "history_gone"
	// ExpiredMaxDuration: the stream reached its maximum duration or its token expired.
	ExpiredMaxDuration = "max_duration"
)

// StreamNotice is the data of a reset or expired event.
type StreamNotice struct {
	Reason string `json:"reason"`
}

// StreamRemoved is the data of a removed event.
type StreamRemoved struct {
	ID string `json:"id"`
}
