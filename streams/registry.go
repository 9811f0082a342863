package streams

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/jobwire/jobwire/api"
)

// RegistryVersion is the version of the JOB_TYPES entries written by this code. Readers skip entries
// of a newer version rather than misread them.
const RegistryVersion = 1

// Limits of a registration, checked by workers before they register and by gateways when they read.
const (
	MaxDescription = 1000
	MaxNameField   = 64
)

// TypeEntry is a job type's registration, under TypeKey(Name): what the worker that started last said
// about the type. It does not expire: a type with no worker online is still known, and its jobs wait.
type TypeEntry struct {
	V           int             `json:"v"`
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	Schema      json.RawMessage `json:"schema"`
	// SchemaHash is SchemaHash(Schema); the same document is also kept under SchemaKey(Name, SchemaHash)
	// so that gateways know every version that online workers serve.
	SchemaHash string `json:"schemaHash"`
	// NameField is the top-level input property whose string value names a job in listings
	// (JobState.name); empty: jobs have no name.
	NameField    string             `json:"nameField,omitempty"`
	Options      api.JobTypeOptions `json:"options"`
	RegisteredAt time.Time          `json:"registeredAt"`
	// RegisteredBy is the name of the worker that wrote the entry (host and pid by default).
	RegisteredBy string `json:"registeredBy,omitempty"`
}

// Validate checks what a reader relies on: a valid name, a schema of at most MaxSchemaBytes whose hash
// matches, and bounded texts. It does not compile the schema.
func (e *TypeEntry) Validate() error {
	switch {
	case e.V < 1 || e.V > RegistryVersion:
		return fmt.Errorf("job type entry version %d not supported (max %d)", e.V, RegistryVersion)
	case !ValidJobType(e.Name):
		return fmt.Errorf("%w %q: want one to four dot-separated lower-case words (a-z, 0-9, _), e.g. \"email.send\"", ErrInvalidJobType, e.Name)
	case len(e.Schema) == 0 || len(e.Schema) > MaxSchemaBytes:
		return fmt.Errorf("job type %s: %w: %d bytes (1..%d)", e.Name, ErrInvalidSchema, len(e.Schema), MaxSchemaBytes)
	case e.SchemaHash != SchemaHash(e.Schema):
		return fmt.Errorf("job type %s: schema hash does not match the schema", e.Name)
	case len(e.Description) > MaxDescription || !utf8.ValidString(e.Description):
		return fmt.Errorf("job type %s: description must be UTF-8 of at most %d bytes", e.Name, MaxDescription)
	case len(e.NameField) > MaxNameField || !utf8.ValidString(e.NameField):
		return fmt.Errorf("job type %s: name field must be UTF-8 of at most %d bytes", e.Name, MaxNameField)
	}
	return nil
}

// WorkerEntry says that one worker process serves a job type now, under WorkerKey(Type, ID). Workers
// renew it with a per-message TTL and remove it when they stop; a worker that dies stops renewing it and
// its entry expires, leaving a marker that watchers see.
type WorkerEntry struct {
	V    int    `json:"v"`
	ID   string `json:"id"`
	Type string `json:"type"`
	// Name is the worker's name (host and pid by default).
	Name string `json:"name,omitempty"`
	// SchemaHash is the version of the input schema this worker accepts.
	SchemaHash  string    `json:"schemaHash"`
	Concurrency int       `json:"concurrency"`
	SDK         string    `json:"sdk,omitempty"`
	StartedAt   time.Time `json:"startedAt"`
}

// Validate checks what a reader relies on.
func (e *WorkerEntry) Validate() error {
	switch {
	case e.V < 1 || e.V > RegistryVersion:
		return fmt.Errorf("worker entry version %d not supported (max %d)", e.V, RegistryVersion)
	case !ValidJobType(e.Type):
		return fmt.Errorf("worker entry: %w %q", ErrInvalidJobType, e.Type)
	case !ValidWorkerID(e.ID):
		return fmt.Errorf("worker entry: %w %q", ErrInvalidWorker, e.ID)
	case !ValidSchemaHash(e.SchemaHash):
		return fmt.Errorf("worker entry %s: invalid schema hash", e.ID)
	}
	return nil
}

// DecodeRegistryEntry decodes a JOB_TYPES value into v (a *TypeEntry or *WorkerEntry) and validates it.
func DecodeRegistryEntry(data []byte, v interface{ Validate() error }) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("decode registry entry: %w", err)
	}
	return v.Validate()
}
