// Package worker is jobwire's Go worker SDK: it runs your job types in your own process, against the
// NATS JetStream topology that jobwire's services create, so the gateway, the SSE streams, the CLI,
// history, dead letters and metrics serve them with no change to jobwire.
//
// A job type is a name and a typed handler. The input type T is decoded from the submitted JSON, after
// it matched the type's JSON Schema (derived from T's struct tags, or given); the result type R is
// encoded to JSON:
//
//	var Count = worker.Type[Input, Result]{
//		Name: "demo.count",
//		Handle: func(ctx context.Context, job *worker.Job[Input], progress worker.Progress) (Result, error) {
//			for i := 1; i <= job.Input.N; i++ {
//				if err := ctx.Err(); err != nil {
//					return Result{Count: i - 1}, err
//				}
//				progress.Report(i, job.Input.N, "")
//			}
//			return Result{Count: job.Input.N}, nil
//		},
//	}
//
//	cfg, err := worker.ConfigFromEnv() // JOBWIRE_WORKER_*, as `jobwire worker` reads them
//	nc, err := worker.Connect(worker.ConnectOptionsFromEnv("count"))
//	w, err := worker.New(nc, cfg)
//	err = w.Register(Count)
//	err = w.Start(ctx) // registers the type in JOB_TYPES and takes jobs
//	defer w.Stop(ctx)  // leaves the registry, lets running jobs finish, hands the rest back
//
// # Delivery guarantees
//
// Jobs are delivered at least once. A job's message leaves its queue only when the worker acks it,
// and the worker acks only after the job's terminal event (completed, failed for good, cancelled) is
// stored in JOB_EVENTS. A worker that dies loses its jobs after their lease (AckWait) and another
// worker runs them again, with a higher Job.Attempt; an ack that is lost brings a finished job's
// message back, and the worker then sees its terminal event and runs nothing. Make every effect
// idempotent, for example keyed by Job.ID. Events are written with message ids, so a retried write is
// stored once.
//
// # Failures
//
// A plain error fails the attempt: the job is retried after a backoff (BackoffBase doubled per
// attempt, at most BackoffMax, with full jitter) until MaxAttempts, then fails for good and its message
// waits in the JOBS_DLQ stream for an operator's retry. Permanent fails the job at once with a stable
// code; RetryAfter asks for the next attempt no sooner than a given time; Cancelled ends the job as
// cancelled. A panic in a handler is a failed attempt. The handler's context ends with a cause
// (context.Cause): ErrCancelled when a user cancelled the job (return the partial result, it is kept),
// ErrTimeout after the type's Timeout (the attempt fails with code "timeout"), ErrStopping when Stop's
// grace ran out (the job is handed back to the queue).
//
// # Registry
//
// Start writes each type's registration (description, schema, options) and schema version into the
// JOB_TYPES bucket, and an entry per type for this worker, renewed every PresenceTTL/3 and expiring
// PresenceTTL after the worker dies; Stop removes it at once. Gateways watch the bucket: they accept
// submits of registered types only, check the input against the schema, and list the types and their
// workers in GET /v1/job-types. While workers with different schema versions run, a submit must match
// every version they serve; so a new version must accept every input the old one accepted.
//
// # Traces
//
// Each attempt is an OpenTelemetry span, "jobwire.attempt <type>", on the global TracerProvider (a
// no-op unless your program installs one: the SDK depends on the OpenTelemetry API only). It continues
// the W3C trace context the job's message carries (the gateway's submit span), and the handler's ctx
// carries it, so the spans the handler starts join the job's trace; the attempt's events, a retry's
// message and a dead letter carry it on. A first delivery also records its queue wait as a span.
// Attributes are ids, never the input: job id, type, owner token, attempt, outcome, error code. With
// a sampled span, jobwire_job_duration_seconds keeps the trace id as an exemplar (served when the
// registry is scraped as OpenMetrics: promhttp.HandlerOpts{EnableOpenMetrics: true}).
//
// Package workertest runs a worker against an embedded NATS server in your own tests.
package worker
