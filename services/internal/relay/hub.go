// Package relay fans JOB_STATE changes out to SSE streams. A Hub holds exactly one KV watch per process,
// whatever the number of streams; every change is decoded and encoded once and offered to the streams
// subscribed to its job or its owner. Offering never blocks, so a slow stream never delays the hub.
// The hub also counts the jobs it holds by type and state, and their starts and finishes, for the
// operators' console (Counts): from memory, at no NATS cost.
package relay

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/jobwire/jobwire/api"
	"github.com/jobwire/jobwire/services/internal/sse"
	"github.com/jobwire/jobwire/streams"
)

// Subscriber receives messages from the hub. Offer must not block.
type Subscriber interface {
	Offer(m *sse.Message)
}

// JobRef is a job the hub knows of, with its latest revision.
type JobRef struct {
	ID       string
	Revision uint64
}

// Removal is a job whose state left JOB_STATE (expired after retention, or deleted).
type Removal struct {
	Owner, JobID string
	Revision     uint64
}

// maxRemovals bounds the memory of recent removals used to resume multiplexed streams.
const maxRemovals = 10000

// Hub is the single upstream of a gateway's streams.
type Hub struct {
	kv            jetstream.KeyValue
	log           *slog.Logger
	updates       prometheus.Counter
	watches       prometheus.Gauge
	snapshotBytes prometheus.Gauge

	mu       sync.RWMutex
	byJob    map[string]map[Subscriber]struct{} // key owner.jobId
	byOwner  map[string]map[Subscriber]struct{}
	index    map[string]map[string]indexed // owner -> jobId -> revision and counted state
	types    map[string]*typeTally         // job type -> its counts (counts.go)
	due      map[string]due                // state key -> runAt, of queued jobs that have one
	now      func() time.Time
	removals []Removal // oldest first
	latest   *snapshots
	floor    uint64 // resumes from before this revision need a reset
	lastRev  uint64
	ready    bool

	traces StoredMessages
	tracer *deliveryTracer // while started with Config.Traces

	cancel context.CancelFunc
	done   chan struct{}
}

// Config configures a Hub.
type Config struct {
	// SnapshotMemory bounds the bytes of job states the hub keeps encoded for streams that open or
	// resume. Default DefaultSnapshotMemory.
	SnapshotMemory int
	// Traces, when set, is the JOB_STATE bucket's stream: the hub then records a span for each terminal
	// state it delivers, continuing the trace of the projector's write of it (one direct get per
	// finished job). Default nil: no tracing.
	Traces StoredMessages
}

// NewHub returns a hub over the JOB_STATE bucket; reg may be nil.
func NewHub(kv jetstream.KeyValue, cfg Config, reg prometheus.Registerer, log *slog.Logger) *Hub {
	if cfg.SnapshotMemory <= 0 {
		cfg.SnapshotMemory = DefaultSnapshotMemory
	}
	h := &Hub{kv: kv, log: log, traces: cfg.Traces,
		byJob: map[string]map[Subscriber]struct{}{}, byOwner: map[string]map[Subscriber]struct{}{},
		index: map[string]map[string]indexed{}, types: map[string]*typeTally{}, due: map[string]due{}, now: time.Now,
		latest:  newSnapshots(cfg.SnapshotMemory),
		updates: prometheus.NewCounter(prometheus.CounterOpts{Name: "jobwire_relay_updates_total", Help: "JOB_STATE changes received by this gateway's watch."}),
		watches: prometheus.NewGauge(prometheus.GaugeOpts{Name: "jobwire_relay_upstream_watches", Help: "KV watches this gateway holds on JOB_STATE (1 when running, whatever the number of streams)."}),
		snapshotBytes: prometheus.NewGauge(prometheus.GaugeOpts{Name: "jobwire_relay_snapshot_bytes",
			Help: "Bytes of encoded job states this gateway keeps for streams that open or resume (bounded by JOBWIRE_SSE_SNAPSHOT_MEMORY)."}),
	}
	if reg != nil {
		reg.MustRegister(h.updates, h.watches, h.snapshotBytes)
	}
	return h
}

// Start opens the watch and returns once the current state of the bucket is loaded. The watch is an
// ordered consumer that the client library re-creates after a reconnect, resuming where it stopped.
func (h *Hub) Start(ctx context.Context) error {
	status, err := h.kv.Status(ctx)
	if err != nil {
		return fmt.Errorf("relay: bucket status: %w", err)
	}
	startRev := status.(*jetstream.KeyValueBucketStatus).StreamInfo().State.LastSeq
	wctx, cancel := context.WithCancel(context.Background())
	w, err := h.kv.WatchAll(wctx)
	if err != nil {
		cancel()
		return fmt.Errorf("relay: watch %s: %w", streams.BucketState, err)
	}
	h.cancel = cancel
	h.done = make(chan struct{})
	h.mu.Lock()
	h.floor = startRev + 1
	h.mu.Unlock()
	h.watches.Set(1)
	if h.traces != nil {
		h.tracer = newDeliveryTracer(h.traces)
	}
	initial := make(chan struct{})
	go h.run(w, startRev, initial)
	select {
	case <-initial:
		return nil
	case <-ctx.Done():
		h.Stop()
		return fmt.Errorf("relay: load current states: %w", ctx.Err())
	}
}

// Stop ends the watch. Safe to call twice or before Start.
func (h *Hub) Stop() {
	if h.cancel == nil {
		return
	}
	h.cancel()
	<-h.done
	h.watches.Set(0)
	if h.tracer != nil {
		h.tracer.stop()
		h.tracer = nil
	}
}

// Ready reports whether the current states are loaded.
func (h *Hub) Ready() bool {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.ready
}

func (h *Hub) run(w jetstream.KeyWatcher, startRev uint64, initial chan struct{}) {
	defer close(h.done)
	defer w.Stop()
	signalled := false
	for e := range w.Updates() {
		if e == nil {
			h.mu.Lock()
			h.ready = true
			h.mu.Unlock()
			if !signalled {
				close(initial)
				signalled = true
			}
			continue
		}
		h.apply(e, e.Revision() <= startRev && !signalled)
	}
	if !signalled {
		close(initial)
	}
}

// apply updates the index and the snapshots and fans the change out. loading is true for the values
// present when the watch started; nobody is subscribed yet that could need them.
func (h *Hub) apply(e jetstream.KeyValueEntry, loading bool) {
	owner, jobID, ok := streams.ParseStateKey(e.Key())
	if !ok {
		return
	}
	h.updates.Inc()
	var received time.Time
	if h.tracer != nil {
		received = time.Now()
	}
	msg, st, err := entryMessage(e, jobID)
	if err != nil {
		h.log.Error("relay: undecodable job state", "key", e.Key(), "rev", e.Revision(), "err", err)
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.lastRev = max(h.lastRev, msg.Revision)
	if st == nil {
		h.forget(owner, jobID, e.Key(), msg.Revision, loading)
	} else {
		h.remember(owner, jobID, e.Key(), msg, st, loading)
	}
	if loading {
		return
	}
	for s := range h.byJob[e.Key()] {
		s.Offer(msg)
	}
	for s := range h.byOwner[owner] {
		s.Offer(msg)
	}
	if h.tracer != nil && st != nil && st.State.Terminal() {
		h.tracer.offer(delivery{key: e.Key(), owner: owner, state: *st,
			streams: len(h.byJob[e.Key()]) + len(h.byOwner[owner]), start: received, end: time.Now()})
	}
}

// entryMessage decodes and encodes a change once for every stream of the gateway; st is the decoded
// state, nil for a removal.
func entryMessage(e jetstream.KeyValueEntry, jobID string) (*sse.Message, *api.JobState, error) {
	if e.Operation() != jetstream.KeyValuePut {
		return RemovedMessage(jobID, e.Revision(), e.Created()), nil, nil
	}
	st, err := streams.DecodeState(e.Value(), e.Revision())
	if err != nil {
		return nil, nil, err
	}
	return StateMessage(&st, e.Created()), &st, nil
}

// remember records a job's new state; h.mu is held.
func (h *Hub) remember(owner, jobID, key string, msg *sse.Message, st *api.JobState, loading bool) {
	jobs := h.index[owner]
	if jobs == nil {
		jobs = map[string]indexed{}
		h.index[owner] = jobs
	}
	old, ok := jobs[jobID]
	jobs[jobID] = h.count(key, old, ok, st, msg.Revision, loading)
	h.latest.put(key, msg)
	h.snapshotBytes.Set(float64(h.latest.bytes))
}

// forget records a job's removal from JOB_STATE; h.mu is held.
func (h *Hub) forget(owner, jobID, key string, rev uint64, loading bool) {
	if jobs := h.index[owner]; jobs != nil {
		if old, ok := jobs[jobID]; ok {
			h.uncount(key, old)
		}
		delete(jobs, jobID)
		if len(jobs) == 0 {
			delete(h.index, owner)
		}
	}
	h.latest.remove(key)
	h.snapshotBytes.Set(float64(h.latest.bytes))
	if loading {
		h.floor = min(h.floor, rev)
	}
	h.removals = append(h.removals, Removal{Owner: owner, JobID: jobID, Revision: rev})
	if len(h.removals) > maxRemovals {
		h.floor = max(h.floor, h.removals[0].Revision+1)
		h.removals = slices.Delete(h.removals, 0, len(h.removals)-maxRemovals)
	}
}

// StateMessage encodes a job state for streams, once for all of them. The legacy frame is made only
// if a legacy stream takes the message.
func StateMessage(st *api.JobState, storedAt time.Time) *sse.Message {
	data, _ := json.Marshal(st)
	id := strconv.FormatUint(st.Revision, 10)
	frame := sse.AppendEvent(nil, id, api.EventState, data)
	return &sse.Message{Key: st.ID, Revision: st.Revision, Frame: frame,
		MakeLegacy: func() []byte { return legacyFrame(id, frame) },
		Terminal:   st.State.Terminal(), StoredAt: storedAt}
}

// legacyFrame re-encodes a state frame in the BullMQ-era shape of the legacy progress route.
func legacyFrame(id string, frame []byte) []byte {
	var st api.JobState
	_ = json.Unmarshal(sse.EventData(frame), &st) // our own encoding: it decodes
	legacy, _ := json.Marshal(st.Legacy())
	return sse.AppendEvent(nil, id, "", legacy)
}

// RemovedMessage tells streams that a job's state expired from JOB_STATE (the same frame on every route).
func RemovedMessage(jobID string, rev uint64, at time.Time) *sse.Message {
	data, _ := json.Marshal(api.StreamRemoved{ID: jobID})
	id := strconv.FormatUint(rev, 10)
	return &sse.Message{Key: jobID, Revision: rev, Frame: sse.AppendEvent(nil, id, api.EventRemoved, data), Terminal: true, StoredAt: at}
}

// Snapshot returns the latest state of owner's job, encoded once and shared by every stream; false
// when the hub does not hold it (not in JOB_STATE, or dropped by the memory bound).
func (h *Hub) Snapshot(owner, jobID string) (*sse.Message, bool) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.latest.get(streams.StateKey(owner, jobID))
}

// SubscribeJob offers every later change of one job to s until the returned function is called.
func (h *Hub) SubscribeJob(owner, jobID string, s Subscriber) (unsubscribe func()) {
	return h.subscribe(h.byJob, streams.StateKey(owner, jobID), s)
}

// SubscribeOwner offers every later change of any of owner's jobs to s until unsubscribed.
func (h *Hub) SubscribeOwner(owner string, s Subscriber) (unsubscribe func()) {
	return h.subscribe(h.byOwner, owner, s)
}

func (h *Hub) subscribe(m map[string]map[Subscriber]struct{}, key string, s Subscriber) func() {
	h.mu.Lock()
	set := m[key]
	if set == nil {
		set = map[Subscriber]struct{}{}
		m[key] = set
	}
	set[s] = struct{}{}
	h.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			h.mu.Lock()
			if set := m[key]; set != nil {
				delete(set, s)
				if len(set) == 0 {
					delete(m, key)
				}
			}
			h.mu.Unlock()
		})
	}
}

// OwnerJobs returns owner's jobs in JOB_STATE, newest first, at most limit (0: all).
func (h *Hub) OwnerJobs(owner string, limit int) []JobRef {
	h.mu.RLock()
	refs := make([]JobRef, 0, len(h.index[owner]))
	for id, e := range h.index[owner] {
		refs = append(refs, JobRef{ID: id, Revision: e.rev})
	}
	h.mu.RUnlock()
	slices.SortFunc(refs, func(a, b JobRef) int { return strings.Compare(b.ID, a.ID) })
	if limit > 0 && len(refs) > limit {
		refs = refs[:limit]
	}
	return refs
}

// ChangedSince returns owner's jobs whose latest revision is after rev, oldest change first.
func (h *Hub) ChangedSince(owner string, rev uint64) []JobRef {
	h.mu.RLock()
	var refs []JobRef
	for id, e := range h.index[owner] {
		if e.rev > rev {
			refs = append(refs, JobRef{ID: id, Revision: e.rev})
		}
	}
	h.mu.RUnlock()
	slices.SortFunc(refs, func(a, b JobRef) int { return cmp.Compare(a.Revision, b.Revision) })
	return refs
}

// RemovedSince returns owner's jobs removed after revision rev. ok is false when the hub cannot know
// (rev is from before what it remembers, or from a future it has not seen): the stream must reset.
func (h *Hub) RemovedSince(owner string, rev uint64) (removed []Removal, ok bool) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if rev+1 < h.floor || rev > h.lastRev {
		return nil, false
	}
	for i := len(h.removals) - 1; i >= 0 && h.removals[i].Revision > rev; i-- {
		if h.removals[i].Owner == owner {
			removed = append(removed, h.removals[i])
		}
	}
	slices.Reverse(removed)
	return removed, true
}

// LastRevision is the newest revision the hub has seen.
func (h *Hub) LastRevision() uint64 {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.lastRev
}

// Subscribers returns the number of job and owner subscriptions (for tests and metrics).
func (h *Hub) Subscribers() int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	n := 0
	for _, s := range h.byJob {
		n += len(s)
	}
	for _, s := range h.byOwner {
		n += len(s)
	}
	return n
}
