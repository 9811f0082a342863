package worker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/invopop/jsonschema"

	"github.com/jobwire/jobwire/streams"
)

// Job is one run of a job, as its handler sees it.
type Job[T any] struct {
	// ID is the job's id (a ULID), the same across attempts: use it as the idempotency key of effects.
	ID string
	// Type is the job type's name.
	Type string
	// Owner is the owner token of the user who submitted the job (a subject-safe form of the user id).
	Owner string
	// Attempt counts the runs of this job, from 1. A job re-run after a crash or a lost ack has a
	// higher attempt than the one that did (some of) its work.
	Attempt int
	// MaxAttempts is the type's limit: the attempt that reaches it is the last.
	MaxAttempts int
	// CreatedAt is when the job was submitted.
	CreatedAt time.Time
	// Input is the job's input, decoded from JSON after it matched the type's schema.
	Input T
}

// Progress reports how far a job has come. Report is cheap to call as often as you like: reports are
// coalesced to at most one progress event per ProgressInterval, and the latest one always reaches the
// job's history (with its terminal event at the latest). done and total are counts of your choosing;
// message is shown to users ("Importing 40 of 100").
type Progress interface {
	Report(done, total int, message string)
}

// HandlerFunc runs one attempt of a job and returns its result, or an error: a plain error fails the
// attempt (retried with backoff until MaxAttempts), Permanent fails the job at once, RetryAfter asks
// for a later retry, Cancelled ends it cancelled. When ctx is cancelled (context.Cause: ErrCancelled,
// ErrTimeout or ErrStopping), return promptly; with ErrCancelled the result returned is kept as the
// cancelled job's partial result.
//
// Delivery is at least once: a job whose worker crashes, or whose ack is lost, runs again on another
// worker. Make every effect idempotent, for example keyed by job.ID.
//
// ctx carries the attempt's deadline (TypeOptions.Timeout). Give each call of your own I/O a shorter
// bound: a client that honours ctx's deadline (nats.go does) would otherwise wait up to the whole
// timeout for an answer that was lost, say in a NATS leader election.
type HandlerFunc[T, R any] func(ctx context.Context, job *Job[T], progress Progress) (R, error)

// Type describes a job type: its name, its typed handler and how it runs. T is the input type (decoded
// from the submitted JSON) and R the result type (encoded to JSON).
type Type[T, R any] struct {
	// Name is the job type ("email.send"): one to four dot-separated words of lower-case letters, digits
	// and '_', each starting with a letter.
	Name string
	// Description is shown in GET /v1/job-types (at most 1000 bytes).
	Description string
	// Handle runs the jobs.
	Handle HandlerFunc[T, R]
	// Schema is the JSON Schema every input must match. Default: derived from T, with its json tags and
	// jsonschema tags such as `jsonschema:"minimum=1,maximum=100"`; unknown properties are refused and
	// fields without omitempty are required. A json.RawMessage or interface T accepts any JSON.
	Schema json.RawMessage
	// NameField is a top-level input property whose string value names the job in listings (its
	// JobState.name), e.g. "name". Default: jobs have no name.
	NameField string
	// Options say how the type runs; zero fields take the worker's defaults.
	Options TypeOptions
}

// JobType is a job type to register: a Type[T, R] value.
type JobType interface {
	definition() (*definition, error)
}

// definition is a job type with its types erased, as the runner uses it.
type definition struct {
	name, description, nameField string
	schemaDoc                    json.RawMessage
	schema                       *streams.Schema
	options                      TypeOptions
	run                          func(ctx context.Context, job jobInfo, progress Progress) (json.RawMessage, error)
}

// jobInfo is what the runner knows of a job before its input is decoded.
type jobInfo struct {
	id, owner   string
	attempt     int
	maxAttempts int
	createdAt   time.Time
	input       json.RawMessage
}

func (t Type[T, R]) definition() (*definition, error) {
	if !streams.ValidJobType(t.Name) {
		return nil, fmt.Errorf("job type %q: %w: want one to four dot-separated lower-case words (a-z, 0-9, _), e.g. \"email.send\"", t.Name, streams.ErrInvalidJobType)
	}
	if t.Handle == nil {
		return nil, fmt.Errorf("job type %s: no Handle function", t.Name)
	}
	doc, err := schemaDocument[T](t.Schema)
	if err != nil {
		return nil, fmt.Errorf("job type %s: %w", t.Name, err)
	}
	schema, err := streams.CompileSchema(doc)
	if err != nil {
		return nil, fmt.Errorf("job type %s: %w", t.Name, err)
	}
	d := &definition{name: t.Name, description: t.Description, nameField: t.NameField, schemaDoc: doc, schema: schema, options: t.Options}
	entry := streams.TypeEntry{V: streams.RegistryVersion, Name: d.name, Description: d.description, Schema: doc,
		SchemaHash: schema.Hash, NameField: d.nameField}
	if err := entry.Validate(); err != nil {
		return nil, err
	}
	d.run = func(ctx context.Context, info jobInfo, progress Progress) (json.RawMessage, error) {
		job := &Job[T]{ID: info.id, Type: t.Name, Owner: info.owner, Attempt: info.attempt,
			MaxAttempts: info.maxAttempts, CreatedAt: info.createdAt}
		if err := decodeInput(info.input, schema, &job.Input); err != nil {
			return nil, err
		}
		res, err := t.Handle(ctx, job, progress)
		out, merr := json.Marshal(res)
		if merr != nil && err == nil {
			return nil, Permanent(CodeInvalidResult, fmt.Errorf("encode result: %w", merr))
		}
		return out, err
	}
	return d, nil
}

// decodeInput checks input against the type's schema and decodes it into v. Either failure is
// permanent: no retry changes the input.
func decodeInput(input json.RawMessage, schema *streams.Schema, v any) error {
	if len(bytes.TrimSpace(input)) == 0 {
		input = json.RawMessage("null")
	}
	if err := schema.Validate(input); err != nil {
		return Permanent(CodeInvalidInput, err)
	}
	if err := json.Unmarshal(input, v); err != nil {
		return Permanent(CodeInvalidInput, fmt.Errorf("input: %w", err))
	}
	return nil
}

// schemaDocument returns the compact schema document of a type: the given one, or one derived from T.
func schemaDocument[T any](given json.RawMessage) (json.RawMessage, error) {
	doc := given
	if len(bytes.TrimSpace(doc)) == 0 {
		r := jsonschema.Reflector{Anonymous: true, ExpandedStruct: true}
		derived, err := json.Marshal(r.Reflect(new(T)))
		if err != nil {
			return nil, fmt.Errorf("derive input schema: %w", err)
		}
		doc = derived
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, doc); err != nil {
		return nil, fmt.Errorf("%w: not JSON: %v", streams.ErrInvalidSchema, err)
	}
	if buf.Len() > streams.MaxSchemaBytes {
		return nil, fmt.Errorf("%w: %d bytes, the limit is %d", streams.ErrInvalidSchema, buf.Len(), streams.MaxSchemaBytes)
	}
	return buf.Bytes(), nil
}

// errorsAs is errors.As for the error types of this package.
func errorsAs[E error](err error) (E, bool) {
	var target E
	ok := errors.As(err, &target)
	return target, ok
}
