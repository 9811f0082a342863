package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jobwire/jobwire/services/internal/jobtypes"
	"github.com/jobwire/jobwire/streams"
)

// JobsFloor is what NATS on this machine does for jobwire's message pattern with no jobwire logic: the
// preloaded backlog of the first backlog row drained again by floor workers and a floor projector
// (JobsFloorMain), each in its own process as jobwire's are, writing per job as many messages of the
// same sizes to streams with the same settings as jobwire did (Streams). Its worker fetches and runs
// jobs as jobwire's does (as many slots as Concurrency); its projector writes as jobwire's does (every
// event arrived, up to 512, in one batch; one state write per job per batch; the batch's writes
// pipelined, then its events acked), so a job's state writes are at most jobwire's measured ones and
// fewer when a batch holds several of its events. jobwire's drain is reported as a fraction of it
// (VsFloor).
type JobsFloor struct {
	Streams       []FloorStream `json:"streams"`
	Workers       int           `json:"workers"`
	Concurrency   int           `json:"concurrency"`
	MaxAckPending int           `json:"maxAckPending"`
	Jobs          int           `json:"jobs"`
	PreloadPerSec float64       `json:"preloadPerSec"`
	// Seconds and JobsPerSec are the drain, from the first job done (its last state write) to the last.
	Seconds    float64 `json:"seconds"`
	JobsPerSec float64 `json:"jobsPerSec"`
	// CPU is the cores each process used during the drain (nats, floor-workers summed, floor-projector, bench).
	CPU map[string]float64 `json:"cpuCores"`
	// StateMsgsPerJob is the state writes the floor projector made per job, preload included: at most
	// the FLOOR_STATE stream's Msgs, fewer where a batch held several events of a job.
	StateMsgsPerJob float64 `json:"stateMsgsPerJob"`
	// JobwireJobsPerSec is the drain of the jobwire row the floor copies; VsFloor is it over JobsPerSec.
	JobwireJobsPerSec float64 `json:"jobwireJobsPerSec"`
	VsFloor           float64 `json:"vsFloor"`
}

// FloorStream is one stream of the floor and what the floor writes to it per job.
type FloorStream struct {
	Name string `json:"name"`
	// Like is the jobwire stream whose configuration it has (read from the server; only the name,
	// subjects and description differ).
	Like string `json:"like"`
	// Measured is jobwire's messages written per job to Like (Cost.Msgs); Msgs the floor's, Measured
	// rounded (at least 1): for the state stream the most it writes per job (StateMsgsPerJob the
	// writes made).
	Measured float64 `json:"measuredMsgsPerJob"`
	Msgs     int     `json:"msgsPerJob"`
	// Bytes are the body sizes of a job's messages, in order.
	Bytes []int `json:"bodyBytes"`
}

// The floor's streams, and the prefix that makes a floor subject of a jobwire one.
const (
	floorJobs   = "FLOOR_JOBS"
	floorEvents = "FLOOR_EVENTS"
	floorState  = "FLOOR_STATE"
	floorPrefix = "floor."
)

// jobStreams are the streams a job writes to, as floorStreams copies them (JOB_STATE's stream counts
// its KV writes).
var jobStreams = []string{streams.StreamJobs, streams.StreamEvents, streams.KVStream(streams.BucketState)}

var floorStreams = []string{floorJobs, floorEvents, floorState}

func floorSubject(s string) string { return floorPrefix + s }

func floorSubjects(in []string) []string {
	if in == nil {
		return nil
	}
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = floorSubject(s)
	}
	return out
}

// floorMsg is a message the floor writes for every job on the job's subject: the body and headers of
// the jobwire message it copies, and a message id of the job id and MsgIDSuffix (none when empty).
type floorMsg struct {
	Body        []byte            `json:"body"`
	Header      map[string]string `json:"header,omitempty"`
	MsgIDSuffix string            `json:"msgIdSuffix,omitempty"`
}

func (f floorMsg) msg(subject string) *nats.Msg {
	m := nats.NewMsg(subject)
	m.Data = f.Body
	for k, v := range f.Header {
		m.Header.Set(k, v)
	}
	return m
}

func (f floorMsg) opts(jobID string) []jetstream.PublishOpt {
	if f.MsgIDSuffix == "" {
		return nil
	}
	return []jetstream.PublishOpt{jetstream.WithMsgID(jobID + f.MsgIDSuffix)}
}

// copyMsg is the floorMsg of a stored jobwire message of job id: its body, its headers but JetStream's
// own (Nats-*), and the part of its message id after the job id.
func copyMsg(m *jetstream.RawStreamMsg, id string) floorMsg {
	f := floorMsg{Body: m.Data, Header: map[string]string{}}
	for k := range m.Header {
		if !strings.HasPrefix(k, "Nats-") {
			f.Header[k] = m.Header.Get(k)
		}
	}
	if mid := m.Header.Get(jetstream.MsgIDHeader); strings.HasPrefix(mid, id) {
		f.MsgIDSuffix = strings.TrimPrefix(mid, id)
	}
	return f
}

// floorPlan is what the floor writes per job, copied from a job of jobwire's backlog row.
type floorPlan struct {
	streams []FloorStream
	owner   string
	// events are a job's events in order: the first (submitted) preloaded, the others the worker's.
	events []floorMsg
	state  floorMsg // the job's state value, written at most states times
	states int
}

// floorPlan reads the pattern of the last throughput run's cost c and the messages of its job
// b.lastJob: its events from JOB_EVENTS, its state from JOB_STATE.
func (b *jobsBench) floorPlan(ctx context.Context, c *Cost) (floorPlan, error) {
	p := floorPlan{owner: b.owners[KindNoop]}
	raws, _, err := streams.ReadEvents(ctx, b.s.js, p.owner, b.lastJob, 0, 64)
	if err != nil {
		return p, err
	}
	if len(raws) < 2 {
		return p, fmt.Errorf("job %s has %d events, want its submitted event and its end", b.lastJob, len(raws))
	}
	kv, err := b.s.js.KeyValue(ctx, streams.BucketState)
	if err != nil {
		return p, err
	}
	entry, err := kv.Get(ctx, streams.StateKey(p.owner, b.lastJob))
	if err != nil {
		return p, fmt.Errorf("state of job %s: %w", b.lastJob, err)
	}
	p.state = floorMsg{Body: entry.Value()}
	msgs := make([]int, len(jobStreams))
	for i, name := range jobStreams {
		msgs[i] = max(1, int(math.Round(c.Msgs[name])))
		p.streams = append(p.streams, FloorStream{Name: floorStreams[i], Like: name, Measured: c.Msgs[name], Msgs: msgs[i]})
	}
	// The job's events by position; the last one always the terminal event, the middle ones repeated
	// when jobwire wrote more than this job shows.
	p.events = make([]floorMsg, msgs[1])
	for i := range p.events {
		k := min(i, len(raws)-2)
		if i == len(p.events)-1 {
			k = len(raws) - 1
		}
		p.events[i] = copyMsg(raws[k], b.lastJob)
		p.streams[1].Bytes = append(p.streams[1].Bytes, len(raws[k].Data))
	}
	job, _ := json.Marshal(newJobMessage(p.owner, jobtypes.NoopType, json.RawMessage(`{}`)))
	p.streams[0].Bytes = []int{len(job)}
	if msgs[0] != 1 {
		b.o.logf("jobs floor: jobwire wrote %.2f JOBS messages per job; the floor queues one", c.Msgs[streams.StreamJobs])
		p.streams[0].Msgs = 1
	}
	p.states = msgs[2]
	for range p.states {
		p.streams[2].Bytes = append(p.streams[2].Bytes, len(p.state.Body))
	}
	return p, nil
}

// floor runs the floor of the backlog row row: the same jobs, the same worker processes and
// concurrency, jobwire's messages per job, on streams and consumers configured as jobwire's.
func (b *jobsBench) floor(ctx context.Context, row Throughput) (res JobsFloor, err error) {
	n := row.Jobs
	res = JobsFloor{Workers: row.Workers, Concurrency: b.o.Concurrency, Jobs: n, JobwireJobsPerSec: row.JobsPerSec}
	plan, err := b.floorPlan(ctx, row.Cost)
	if err != nil {
		return res, err
	}
	res.Streams = plan.streams
	kinds := make([]string, len(plan.events))
	for i, e := range plan.events {
		kinds[i] = e.Header[streams.HeaderEventType]
	}
	b.o.logf("jobs floor: %d jobs, %d worker procs, per job %d/%d/%d messages to %s (events %s)", n, row.Workers,
		plan.streams[0].Msgs, plan.streams[1].Msgs, plan.streams[2].Msgs, strings.Join(floorStreams, "/"), strings.Join(kinds, ", "))
	defer b.s.deleteFloorStreams()
	if err := b.s.createFloorStreams(ctx); err != nil {
		return res, err
	}
	wcfg, err := b.s.floorConsumer(ctx, streams.StreamJobs, streams.WorkerConsumer(jobtypes.NoopType), floorJobs)
	if err != nil {
		return res, err
	}
	pcfg, err := b.s.floorConsumer(ctx, streams.StreamEvents, streams.ConsumerProjector, floorEvents)
	if err != nil {
		return res, err
	}
	res.MaxAckPending = wcfg.MaxAckPending
	done, err := watchFloorDone(ctx, b.s.js, n)
	if err != nil {
		return res, err
	}
	defer done.stop()

	// The projector runs while the backlog is queued, as jobwire's does; the workers start after.
	proj, err := startFloorProc("floor-projector", "projector", jobsFloorSpec{NATS: b.s.natsURL, Stream: floorEvents, Consumer: pcfg.Durable,
		Prefix: floorSubject(streams.KVSubject(streams.BucketState, streams.StateKey(plan.owner, ""))), Msgs: []floorMsg{plan.state},
		Events: len(plan.events), States: plan.states, TTL: streams.DefaultStateRetention})
	if err != nil {
		return res, err
	}
	procs := []*pipedProc{proj}
	defer func() {
		for _, p := range procs {
			p.stop()
		}
	}()
	start := time.Now()
	if err := b.floorPreload(ctx, plan, n); err != nil {
		return res, err
	}
	res.PreloadPerSec = float64(n) / time.Since(start).Seconds()
	time.Sleep(200 * time.Millisecond) // as the backlog row
	spec := jobsFloorSpec{NATS: b.s.natsURL, Stream: floorJobs, Consumer: wcfg.Durable, Concurrency: b.o.Concurrency,
		Prefix: floorSubject(streams.EventSubject(plan.owner, "")), Msgs: plan.events[1:]}
	for i := range row.Workers {
		w, err := startFloorProc(fmt.Sprintf("floor-worker-%d", i+1), "worker", spec)
		if err != nil {
			return res, err
		}
		procs = append(procs, w)
	}
	cpu0, t0 := b.floorCPU(procs), time.Now()
	if err := done.wait(b.o.jobTimeout(n)); err != nil {
		return res, err
	}
	res.CPU = cpuCores(cpu0, b.floorCPU(procs), time.Since(t0))
	first, last := done.span()
	res.Seconds = last.Sub(first).Seconds()
	res.JobsPerSec = float64(n-1) / res.Seconds
	res.VsFloor = ratio(row.JobsPerSec, res.JobsPerSec)
	writes, err := checkFloorProcs(procs, n, len(plan.events))
	if err != nil {
		return res, err
	}
	res.StateMsgsPerJob = float64(writes) / float64(n)
	b.o.logf("jobs floor: %.0f jobs/s (jobwire %.0f/s: %.2f of the floor), preload %.0f/s, %.2f state writes per job (at most %d), CPU %s",
		res.JobsPerSec, row.JobsPerSec, res.VsFloor, res.PreloadPerSec, res.StateMsgsPerJob, plan.states, cpuCell(res.CPU))
	return res, nil
}

// floorPreload queues n jobs on the floor: per job a new job's message as submitDirect publishes it,
// on the floor's queue subject, and its submitted event, both asynchronously; then checks that every
// job message is stored.
func (b *jobsBench) floorPreload(ctx context.Context, plan floorPlan, n int) error {
	queue := floorSubject(streams.QueueSubject(jobtypes.NoopType))
	events := floorSubject(streams.EventSubject(plan.owner, ""))
	for range n {
		msg := newJobMessage(plan.owner, jobtypes.NoopType, json.RawMessage(`{}`))
		q := nats.NewMsg(queue)
		q.Data, _ = json.Marshal(msg)
		if _, err := publishAsync(b.s.js, q, jetstream.WithMsgID(msg.JobID)); err != nil {
			return fmt.Errorf("floor preload: %w", err)
		}
		ev := plan.events[0]
		if _, err := publishAsync(b.s.js, ev.msg(events+msg.JobID), ev.opts(msg.JobID)...); err != nil {
			return fmt.Errorf("floor preload: %w", err)
		}
	}
	select {
	case <-b.s.js.PublishAsyncComplete():
	case <-time.After(30 * time.Second):
		return fmt.Errorf("floor preload not acknowledged within 30s")
	}
	st, err := b.s.js.Stream(ctx, floorJobs)
	if err != nil {
		return err
	}
	info, err := st.Info(ctx)
	if err != nil {
		return err
	}
	if info.State.Msgs != uint64(n) {
		return fmt.Errorf("floor preload: %d of %d job messages stored", info.State.Msgs, n)
	}
	return nil
}

// floorCPU returns the CPU seconds used so far by the nats-server, the floor's processes (procs[0] the
// projector, the workers after it) and the bench.
func (b *jobsBench) floorCPU(procs []*pipedProc) map[string]float64 {
	out := map[string]float64{"bench": selfCPUSeconds(), "nats": cpuSeconds(b.s.nats.Pid()), "floor-projector": cpuSeconds(procs[0].pid())}
	for _, p := range procs[1:] {
		out["floor-workers"] += cpuSeconds(p.pid())
	}
	return out
}

// createFloorStreams makes the floor's streams with the configurations of jobStreams read from the
// server: only the names, subjects and descriptions differ.
func (s *stack) createFloorStreams(ctx context.Context) error {
	for i, like := range jobStreams {
		st, err := s.js.Stream(ctx, like)
		if err != nil {
			return fmt.Errorf("stream %s: %w", like, err)
		}
		info, err := st.Info(ctx)
		if err != nil {
			return fmt.Errorf("stream %s: %w", like, err)
		}
		cfg := info.Config
		cfg.Name, cfg.Description, cfg.Metadata = floorStreams[i], "jobwire-bench floor with the settings of "+like, nil
		cfg.Subjects = floorSubjects(cfg.Subjects)
		if _, err := s.js.CreateStream(ctx, cfg); err != nil {
			return fmt.Errorf("create %s: %w", cfg.Name, err)
		}
	}
	return nil
}

func (s *stack) deleteFloorStreams() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, name := range floorStreams {
		if err := s.js.DeleteStream(ctx, name); err != nil {
			s.o.logf("jobs floor: delete stream %s: %v", name, err)
		}
	}
}

// floorConsumer creates on stream the floor's copy of jobwire's consumer name of stream like, with its
// configuration read from the server (only the name, filter and description differ), and returns it.
func (s *stack) floorConsumer(ctx context.Context, like, name, stream string) (jetstream.ConsumerConfig, error) {
	c, err := s.js.Consumer(ctx, like, name)
	if err != nil {
		return jetstream.ConsumerConfig{}, fmt.Errorf("consumer %s of %s: %w", name, like, err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		return jetstream.ConsumerConfig{}, fmt.Errorf("consumer %s of %s: %w", name, like, err)
	}
	cfg := info.Config
	cfg.Durable, cfg.Name = "floor-"+name, "floor-"+name
	cfg.Description, cfg.Metadata = "jobwire-bench floor with the settings of "+name, nil
	if cfg.FilterSubject != "" {
		cfg.FilterSubject = floorSubject(cfg.FilterSubject)
	}
	cfg.FilterSubjects = floorSubjects(cfg.FilterSubjects)
	if _, err := s.js.CreateConsumer(ctx, stream, cfg); err != nil {
		return cfg, fmt.Errorf("create consumer %s: %w", cfg.Durable, err)
	}
	return cfg, nil
}

// floorDone watches FLOOR_STATE as the tracker watches JOB_STATE (one ordered consumer, new messages
// only; like a KV watch it may miss values a later one replaced) and records when each job got its
// terminal state: the write with a TTL, as jobwire's projector writes a finished job's state.
type floorDone struct {
	n     int
	cc    jetstream.ConsumeContext
	mu    sync.Mutex
	done  map[string]bool
	first time.Time
	last  time.Time
	all   chan struct{} // closed once n jobs are done
}

func watchFloorDone(ctx context.Context, js jetstream.JetStream, n int) (*floorDone, error) {
	cons, err := js.OrderedConsumer(ctx, floorState, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverNewPolicy})
	if err != nil {
		return nil, fmt.Errorf("watch %s: %w", floorState, err)
	}
	d := &floorDone{n: n, done: map[string]bool{}, all: make(chan struct{})}
	d.cc, err = cons.Consume(d.seen)
	if err != nil {
		return nil, fmt.Errorf("watch %s: %w", floorState, err)
	}
	return d, nil
}

func (d *floorDone) seen(m jetstream.Msg) {
	now := time.Now()
	if m.Headers().Get(jetstream.MsgTTLHeader) == "" {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.done[m.Subject()] {
		return
	}
	d.done[m.Subject()] = true
	if len(d.done) == 1 {
		d.first = now
	}
	d.last = now
	if len(d.done) == d.n {
		close(d.all)
	}
}

// wait waits until every job is done, or timeout passes.
func (d *floorDone) wait(timeout time.Duration) error {
	select {
	case <-d.all:
		return nil
	case <-time.After(timeout):
		d.mu.Lock()
		defer d.mu.Unlock()
		return fmt.Errorf("jobs floor: %d of %d jobs done within %s", len(d.done), d.n, timeout)
	}
}

// span returns when the first and the last job were done.
func (d *floorDone) span() (time.Time, time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.first, d.last
}

func (d *floorDone) stop() { d.cc.Stop() }

// startFloorProc starts a floor-jobs process of role with spec and waits until it is ready.
func startFloorProc(name, role string, spec jobsFloorSpec) (*pipedProc, error) {
	p, err := startPiped(name, childJobsFloor, []string{"--role", role}, -1)
	if err != nil {
		return nil, err
	}
	b, _ := json.Marshal(spec)
	var r jobsFloorReport
	if err = p.send("spec %s", b); err == nil {
		err = p.recv(&r, 30*time.Second)
	}
	if err == nil && !r.Ready {
		err = fmt.Errorf("%s: not ready: %s", name, r.FirstError)
	}
	if err != nil {
		p.stop()
		return nil, err
	}
	return p, nil
}

// checkFloorProcs stops the floor's processes (procs[0] the projector, the workers after it) and checks
// their reports: every job message handled once, every event of every job, no error. It returns the
// projector's state writes.
func checkFloorProcs(procs []*pipedProc, jobs, events int) (writes int, err error) {
	worked := 0
	for i, p := range procs {
		var r jobsFloorReport
		err := p.send("stop")
		if err == nil {
			err = p.recv(&r, 30*time.Second)
		}
		if err != nil {
			return 0, err
		}
		if r.Errors > 0 {
			return 0, fmt.Errorf("%s: %d errors, the first: %s", p.name, r.Errors, r.FirstError)
		}
		if i == 0 && r.Handled != jobs*events {
			return 0, fmt.Errorf("%s: %d events handled, want %d", p.name, r.Handled, jobs*events)
		}
		if i == 0 {
			writes = r.Writes
		} else {
			worked += r.Handled
		}
	}
	if worked != jobs {
		return 0, fmt.Errorf("floor workers: %d job messages handled, want %d", worked, jobs)
	}
	return writes, nil
}
