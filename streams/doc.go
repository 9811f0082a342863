// Package streams is jobwire's JetStream topology as code: the names of every stream, KV bucket and
// consumer, their configurations and Ensure, which creates or updates them idempotently; the subjects
// and keys (built only from validated tokens); the versioned job events; and Fold, the pure function
// that turns a job's events into its JobState.
//
// Layout (docs/architecture.md describes it):
//
//	JOBS            stream  jobs.queue.<type>            work queue, deduplicated on Nats-Msg-Id = job id
//	JOBS_DLQ        stream  jobs.dlq.<owner>.<jobId>     dead letters: jobs whose attempts ran out
//	JOB_EVENTS      stream  jobs.events.<owner>.<jobId>  the event log, source of truth
//	JOB_CANCELS     stream  jobs.cancel.<owner>.<jobId>  the last cancel request of each job
//	JOBS_AUDIT      stream  jobs.audit.<action>          what operators did
//	JOBS_TICKS      stream  jobs.tick.schedule.<id>      a periodic job's message schedule (its definition)
//	                        jobs.tick.fire.<id>          its ticks, taken by the gateways' durable "ticker"
//	JOB_STATE       KV      <owner>.<jobId>              latest JobState; finished jobs expire with a marker
//	LIBRARY         KV      <owner>.<trackKey>           tracks that imports produced
//	JOB_IDEMPOTENCY KV      <owner>.<keyHash>            Idempotency-Key -> job, kept 24 h
//	JOB_TYPES       KV      type.<type>                  the registration of a job type
//	                        schema.<type>.<hash>         each version of its input schema
//	                        worker.<type>.<workerId>     a worker serving it now (expires)
//
// It is also the one home of the JetStream plumbing that gateways and workers share: writing events
// and job messages (PublishEvent, Enqueue), reading a job's history (LastEvent, ReadEvents), cancel
// requests (Cancel), retries through leader elections (Retry) and input schemas (CompileSchema).
package streams
