// Package registry is a gateway's view of the job-type registry (the JOB_TYPES bucket): one KV watch
// per process keeps every registered type, its schema versions and the workers serving it in memory,
// so a submit is checked without a NATS round trip and workers coming and going are seen at once.
package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/jobwire/jobwire/api"
	"github.com/jobwire/jobwire/streams"
)

// ErrUnknownType is returned by Check for a type no worker ever registered.
var ErrUnknownType = errors.New("unknown job type")

// MaxName bounds the name a job takes from its input's NameField.
const MaxName = 200

// Registry holds the registered job types. It is safe for concurrent use.
type Registry struct {
	kv  jetstream.KeyValue
	log *slog.Logger

	mu       sync.RWMutex
	types    map[string]*jobType
	compiled map[string]*streams.Schema // by schema hash, shared by every type
	ready    bool

	cancel context.CancelFunc
	done   chan struct{}
}

// jobType is what the registry knows of one type.
type jobType struct {
	entry    *streams.TypeEntry             // nil until its registration is read
	versions map[string]*streams.Schema     // compiled schema versions by hash
	workers  map[string]streams.WorkerEntry // online workers by id
	control  *streams.ControlEntry          // what operators set; nil: unpaused, unlimited
}

// New returns a registry over the JOB_TYPES bucket kv.
func New(kv jetstream.KeyValue, log *slog.Logger) *Registry {
	return &Registry{kv: kv, log: log, types: map[string]*jobType{}, compiled: map[string]*streams.Schema{}}
}

// Start opens the watch and returns once the bucket's current entries are loaded. The watch is an
// ordered consumer that the client library re-creates after a reconnect.
func (r *Registry) Start(ctx context.Context) error {
	wctx, cancel := context.WithCancel(context.Background())
	w, err := r.kv.WatchAll(wctx)
	if err != nil {
		cancel()
		return fmt.Errorf("registry: watch %s: %w", streams.BucketJobTypes, err)
	}
	r.cancel, r.done = cancel, make(chan struct{})
	loaded := make(chan struct{})
	go r.run(w, loaded)
	select {
	case <-loaded:
		return nil
	case <-ctx.Done():
		r.Stop()
		return fmt.Errorf("registry: load %s: %w", streams.BucketJobTypes, ctx.Err())
	}
}

// Stop ends the watch. Safe to call twice or before Start.
func (r *Registry) Stop() {
	if r.cancel == nil {
		return
	}
	r.cancel()
	<-r.done
}

// Ready reports whether the registry's current entries are loaded.
func (r *Registry) Ready() bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.ready
}

func (r *Registry) run(w jetstream.KeyWatcher, loaded chan struct{}) {
	defer close(r.done)
	defer w.Stop()
	for e := range w.Updates() {
		if e == nil {
			r.mu.Lock()
			if !r.ready {
				r.ready = true
				close(loaded)
			}
			r.mu.Unlock()
			continue
		}
		r.apply(e)
	}
}

// apply folds one change of the bucket into memory. Entries that jobwire would not write (a hostile or
// broken registration) are logged and ignored: the previous state of the type stays.
func (r *Registry) apply(e jetstream.KeyValueEntry) {
	kind, name, id := streams.ParseRegistryKey(e.Key())
	removed := e.Operation() != jetstream.KeyValuePut
	if kind == streams.RegistryUnknown {
		if !removed {
			r.log.Warn("registry: ignoring an unknown key", "key", e.Key())
		}
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	t := r.types[name]
	if t == nil {
		t = &jobType{versions: map[string]*streams.Schema{}, workers: map[string]streams.WorkerEntry{}}
		r.types[name] = t
	}
	switch {
	case kind == streams.RegistryWorker && removed:
		delete(t.workers, id)
	case kind == streams.RegistrySchema && removed:
		if t.entry == nil || t.entry.SchemaHash != id { // the registration carries its own version
			delete(t.versions, id)
		}
	case kind == streams.RegistryType && removed:
		t.entry = nil
	case kind == streams.RegistryControl && removed:
		t.control = nil
	case kind == streams.RegistryControl:
		var ce streams.ControlEntry
		if err := streams.DecodeRegistryEntry(e.Value(), &ce); err != nil || ce.Type != name {
			r.log.Warn("registry: ignoring a control entry", "key", e.Key(), "err", err)
			return
		}
		t.control = &ce
	case kind == streams.RegistryWorker:
		var we streams.WorkerEntry
		if err := streams.DecodeRegistryEntry(e.Value(), &we); err != nil || we.ID != id || we.Type != name {
			r.log.Warn("registry: ignoring a worker entry", "key", e.Key(), "err", err)
			return
		}
		t.workers[id] = we
	case kind == streams.RegistrySchema:
		s, err := r.schemaLocked(e.Value())
		if err == nil && s.Hash != id {
			err = errors.New("its hash does not match its key")
		}
		if err != nil {
			r.log.Warn("registry: ignoring a schema version", "key", e.Key(), "err", err)
			return
		}
		t.versions[id] = s
	case kind == streams.RegistryType:
		r.applyType(t, name, e)
	}
	if t.entry == nil && t.control == nil && len(t.workers) == 0 && len(t.versions) == 0 {
		delete(r.types, name)
	}
}

func (r *Registry) applyType(t *jobType, name string, e jetstream.KeyValueEntry) {
	var te streams.TypeEntry
	err := streams.DecodeRegistryEntry(e.Value(), &te)
	if err == nil && te.Name != name {
		err = fmt.Errorf("entry names %q", te.Name)
	}
	var s *streams.Schema
	if err == nil {
		s, err = r.schemaLocked(te.Schema)
	}
	if err != nil {
		r.log.Warn("registry: ignoring a job type registration", "type", name, "err", err)
		return
	}
	t.entry = &te
	t.versions[te.SchemaHash] = s
}

// schemaLocked compiles a schema document, once per version: workers write the same registration at
// every start.
func (r *Registry) schemaLocked(doc json.RawMessage) (*streams.Schema, error) {
	hash := streams.SchemaHash(doc)
	if s, ok := r.compiled[hash]; ok {
		return s, nil
	}
	s, err := streams.CompileSchema(doc)
	if err != nil {
		return nil, err
	}
	r.compiled[hash] = s
	return s, nil
}

// Checked is what Check learns of an accepted submit.
type Checked struct {
	// Name is the job's name, from the type's NameField ("" without one).
	Name string
	// Options are the type's registered options (the limits a job's own options must keep to).
	Options api.JobTypeOptions
}

// Check reports whether a job of jobType with input may be submitted. A type without a registration is ErrUnknownType. The input must match
// every schema version served by an online worker, or the latest registration's schema when none is
// online, so that whichever worker takes the job can run it; a mismatch is a *streams.InputError.
func (r *Registry) Check(jobType string, input json.RawMessage) (Checked, error) {
	r.mu.RLock()
	t := r.types[jobType]
	if t == nil || t.entry == nil {
		r.mu.RUnlock()
		return Checked{}, ErrUnknownType
	}
	var schemas []*streams.Schema
	for _, hash := range t.servedVersions() {
		if s, ok := t.versions[hash]; ok { // a version whose document is gone: the others decide
			schemas = append(schemas, s)
		}
	}
	if len(schemas) == 0 { // never unchecked: the registration's own version is always there
		schemas = append(schemas, t.versions[t.entry.SchemaHash])
	}
	nameField, opts := t.entry.NameField, t.entry.Options
	r.mu.RUnlock()
	for _, s := range schemas {
		if err := s.Validate(input); err != nil {
			return Checked{}, err
		}
	}
	return Checked{Name: nameOf(nameField, input), Options: opts}, nil
}

// servedVersions are the schema hashes of the online workers, or of the latest registration.
func (t *jobType) servedVersions() []string {
	var out []string
	for _, w := range t.workers {
		if !slices.Contains(out, w.SchemaHash) {
			out = append(out, w.SchemaHash)
		}
	}
	if len(out) == 0 {
		out = append(out, t.entry.SchemaHash)
	}
	slices.Sort(out)
	return out
}

// nameOf returns the string value of input's top-level property field, cut to MaxName bytes.
func nameOf(field string, input json.RawMessage) string {
	if field == "" {
		return ""
	}
	var obj map[string]json.RawMessage
	var name string
	if json.Unmarshal(input, &obj) != nil || json.Unmarshal(obj[field], &name) != nil {
		return ""
	}
	if len(name) > MaxName {
		name = strings.ToValidUTF8(name[:MaxName], "")
	}
	if !utf8.ValidString(name) {
		return ""
	}
	return name
}

// List returns every registered type, sorted by name.
func (r *Registry) List() []api.JobType {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]api.JobType, 0, len(r.types))
	for _, t := range r.types {
		if t.entry != nil {
			out = append(out, t.describe())
		}
	}
	slices.SortFunc(out, func(a, b api.JobType) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Get returns one registered type; false when no worker ever registered it.
func (r *Registry) Get(name string) (api.JobType, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	t := r.types[name]
	if t == nil || t.entry == nil {
		return api.JobType{}, false
	}
	return t.describe(), true
}

// describe is the API's view of a registered type.
func (t *jobType) describe() api.JobType {
	e := t.entry
	jt := api.JobType{Name: e.Name, Description: e.Description, Schema: e.Schema, SchemaHash: e.SchemaHash,
		Options: e.Options, Online: len(t.workers) > 0, Workers: []api.JobTypeWorker{}, RegisteredAt: e.RegisteredAt}
	for _, w := range t.workers {
		jt.Workers = append(jt.Workers, api.JobTypeWorker{ID: w.ID, Concurrency: w.Concurrency, SchemaHash: w.SchemaHash, SDK: w.SDK, StartedAt: w.StartedAt})
	}
	slices.SortFunc(jt.Workers, func(a, b api.JobTypeWorker) int { return strings.Compare(a.ID, b.ID) })
	if t.control != nil {
		ApplyControl(&jt, *t.control)
	}
	return jt
}

// ApplyControl sets what operators set (paused, rate limit) on jt.
func ApplyControl(jt *api.JobType, c streams.ControlEntry) {
	jt.Paused, jt.PausedAt, jt.PausedBy, jt.RateLimit = c.Paused, c.PausedAt, c.PausedBy, c.RateLimit
}

var (
	pausedDesc = prometheus.NewDesc("jobwire_job_type_paused", "1 while an operator has paused the job type (its workers fetch no job), else 0.", []string{"type"}, nil)
	onlineDesc = prometheus.NewDesc("jobwire_job_type_workers", "Worker processes serving the job type now.", []string{"type"}, nil)
)

// Describe implements prometheus.Collector.
func (r *Registry) Describe(ch chan<- *prometheus.Desc) { ch <- pausedDesc; ch <- onlineDesc }

// Collect implements prometheus.Collector: the paused state and workers of every registered type, as
// the watch has them.
func (r *Registry) Collect(ch chan<- prometheus.Metric) {
	for _, jt := range r.List() {
		paused := 0.0
		if jt.Paused {
			paused = 1
		}
		ch <- prometheus.MustNewConstMetric(pausedDesc, prometheus.GaugeValue, paused, jt.Name)
		ch <- prometheus.MustNewConstMetric(onlineDesc, prometheus.GaugeValue, float64(len(jt.Workers)), jt.Name)
	}
}
