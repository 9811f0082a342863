package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jobwire/jobwire/streams"
)

// jobsFloorSpec is what a floor-jobs process is told, as its first command (spec <JSON>): the NATS
// server, the stream and durable consumer it reads, and what it writes.
//
// A worker runs Concurrency jobs at once and writes per job Msgs on Prefix + the job id, every one but
// the last asynchronously, the last (the terminal event) awaited before the job message is acked. A
// projector writes, per batch of the events that have arrived, one state (Msgs[0] on Prefix + the job
// id) per job of the batch that is due one of its States writes over its Events events, expecting the
// subject's last sequence, the write of a batch holding the job's last event with TTL (which marks the
// job done for the bench); then it acks the batch's events.
type jobsFloorSpec struct {
	NATS        string        `json:"nats"`
	Stream      string        `json:"stream"`
	Consumer    string        `json:"consumer"`
	Concurrency int           `json:"concurrency,omitempty"`
	Prefix      string        `json:"prefix"`
	Msgs        []floorMsg    `json:"msgs"`
	Events      int           `json:"eventsPerJob,omitempty"`
	States      int           `json:"statesPerJob,omitempty"`
	TTL         time.Duration `json:"ttl,omitempty"`
}

// jobsFloorReport is a line a floor-jobs process writes: Ready once it consumes, then, after stop,
// the messages it handled, the state writes it made (a projector) and its errors.
type jobsFloorReport struct {
	Ready      bool   `json:"ready,omitempty"`
	Handled    int    `json:"handled"`
	Writes     int    `json:"writes,omitempty"`
	Errors     int    `json:"errors"`
	FirstError string `json:"firstError,omitempty"`
}

// floorRole is a running worker or projector of the floor; stop ends it once the messages in hand are
// handled and reports them.
type floorRole interface {
	stop() jobsFloorReport
}

// JobsFloorMain is `jobwire-bench floor-jobs --role worker|projector` (hidden; the jobs benchmark runs
// it as the floor of its preloaded backlog): the least a worker or a projector can do with jobwire's
// messages, as a measure of what NATS on this machine allows. No JSON decoding, no folding, no
// reads: a worker takes the job id from its message's body and writes the job's events, a projector
// takes it from the event's subject, counts the job's events (the Events-th is its terminal one) and
// writes the job's state, batched and pipelined as jobwire's projector writes. Commands on stdin, one
// a line:
//
//	spec <jobsFloorSpec JSON>   connect, bind the durable consumer, start; report {"ready":true}
//	stop                        stop consuming, finish the messages in hand; report what was handled
//
// It exits when stdin closes.
func JobsFloorMain(args []string) int {
	fs := flag.NewFlagSet(childJobsFloor, flag.ContinueOnError)
	role := fs.String("role", "", "worker or projector")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *role != "worker" && *role != "projector" {
		fmt.Fprintln(os.Stderr, "floor-jobs: --role must be worker or projector")
		return 2
	}
	specs, stops, ended := make(chan jobsFloorSpec, 1), make(chan struct{}, 1), make(chan error, 1)
	go func() {
		ended <- commands(func(cmd, arg string) error { return floorJobsCommand(cmd, arg, specs, stops) })
	}()
	var spec jobsFloorSpec
	select {
	case spec = <-specs:
	case err := <-ended:
		return floorJobsExit(err)
	}
	out := &reporter{w: os.Stdout}
	r, err := startFloorRole(*role, spec)
	if err != nil {
		out.report(jobsFloorReport{FirstError: err.Error()})
		fmt.Fprintln(os.Stderr, "floor-jobs:", err)
		return 1
	}
	out.report(jobsFloorReport{Ready: true})
	select {
	case <-stops:
	case err := <-ended:
		r.stop()
		return floorJobsExit(err)
	}
	out.report(r.stop())
	return floorJobsExit(<-ended)
}

func floorJobsExit(err error) int {
	if !errors.Is(err, errStdinClosed) {
		fmt.Fprintln(os.Stderr, "floor-jobs:", err)
		return 1
	}
	return 0
}

func floorJobsCommand(cmd, arg string, specs chan<- jobsFloorSpec, stops chan<- struct{}) error {
	switch cmd {
	case "spec":
		var spec jobsFloorSpec
		if err := json.Unmarshal([]byte(arg), &spec); err != nil {
			return fmt.Errorf("spec: %w", err)
		}
		select {
		case specs <- spec:
		default:
			return errors.New("a second spec")
		}
	case "stop":
		select {
		case stops <- struct{}{}:
		default:
		}
	default:
		return fmt.Errorf("unknown command %q", cmd)
	}
	return nil
}

// startFloorRole connects to NATS, binds spec's consumer and starts role on it.
func startFloorRole(role string, spec jobsFloorSpec) (floorRole, error) {
	nc, err := nats.Connect(spec.NATS, nats.Name("jobwire-bench-floor-"+role), nats.MaxReconnects(-1))
	if err != nil {
		return nil, fmt.Errorf("connect to nats: %w", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cons, err := js.Consumer(ctx, spec.Stream, spec.Consumer)
	if err != nil {
		return nil, fmt.Errorf("consumer %s of %s: %w", spec.Consumer, spec.Stream, err)
	}
	if role == "worker" {
		if spec.Concurrency < 1 {
			return nil, fmt.Errorf("worker concurrency %d", spec.Concurrency)
		}
		return startFloorWorker(js, cons, spec), nil
	}
	if spec.Events < 1 || spec.States < 1 || len(spec.Msgs) != 1 || spec.TTL <= 0 {
		return nil, fmt.Errorf("projector: %d events, %d states, %d state values per job, TTL %s", spec.Events, spec.States, len(spec.Msgs), spec.TTL)
	}
	return startFloorProjector(js, cons, spec)
}

// floorStats counts what a floor process handled and its errors.
type floorStats struct {
	mu sync.Mutex
	r  jobsFloorReport
}

func (s *floorStats) add(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.r.Handled++
	if err != nil {
		if s.r.Errors++; s.r.FirstError == "" {
			s.r.FirstError = err.Error()
		}
	}
}

func (s *floorStats) wrote(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.r.Writes += n
}

func (s *floorStats) report() jobsFloorReport {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.r
}

// floorWorker takes jobs as jobwire's worker does (worker/runner.go: Concurrency slots, a fetch of
// exactly as many jobs as there are free slots, so none waits in a local buffer) and writes each
// job's events, on Concurrency goroutines started once (jobwire's worker starts one per job).
type floorWorker struct {
	spec     jobsFloorSpec
	js       jetstream.JetStream
	slots    chan struct{}      // one per job fetched and not yet handled
	jobs     chan jetstream.Msg // to the goroutines; never full, as it holds at most the slots taken
	running  sync.WaitGroup
	cancel   context.CancelFunc
	loopDone chan struct{}
	stats    floorStats
}

func startFloorWorker(js jetstream.JetStream, cons jetstream.Consumer, spec jobsFloorSpec) *floorWorker {
	ctx, cancel := context.WithCancel(context.Background())
	w := &floorWorker{spec: spec, js: js, slots: make(chan struct{}, spec.Concurrency), jobs: make(chan jetstream.Msg, spec.Concurrency),
		cancel: cancel, loopDone: make(chan struct{})}
	for range spec.Concurrency {
		w.running.Add(1)
		go func() {
			defer w.running.Done()
			for msg := range w.jobs {
				w.stats.add(w.handle(msg))
				<-w.slots
			}
		}()
	}
	go w.fetchLoop(ctx, cons)
	return w
}

func (w *floorWorker) fetchLoop(ctx context.Context, cons jetstream.Consumer) {
	defer close(w.loopDone)
	for ctx.Err() == nil {
		free := w.takeSlots(ctx)
		if free == 0 {
			return
		}
		fetchCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
		batch, err := cons.Fetch(free, jetstream.FetchContext(fetchCtx))
		if err == nil {
			for msg := range batch.Messages() {
				free--
				w.jobs <- msg
			}
			err = batch.Error()
		}
		cancel()
		for range free {
			<-w.slots
		}
		if err != nil && ctx.Err() == nil && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, context.DeadlineExceeded) {
			fmt.Fprintln(os.Stderr, "floor-jobs worker: fetch:", err)
			time.Sleep(250 * time.Millisecond)
		}
	}
}

// takeSlots waits for one free slot, then takes every other free one; 0 when ctx ended first.
func (w *floorWorker) takeSlots(ctx context.Context) int {
	select {
	case w.slots <- struct{}{}:
	case <-ctx.Done():
		return 0
	}
	free := 1
	for free < cap(w.slots) {
		select {
		case w.slots <- struct{}{}:
			free++
		default:
			return free
		}
	}
	return free
}

// handle writes a job's events, the last (terminal) one awaited, then acks its message.
func (w *floorWorker) handle(msg jetstream.Msg) error {
	id := jobIDOf(msg.Data())
	if id == "" {
		return fmt.Errorf("no job id in %.100q", msg.Data())
	}
	subject := w.spec.Prefix + id
	futs := make([]jetstream.PubAckFuture, 0, len(w.spec.Msgs))
	for i, fm := range w.spec.Msgs {
		if i < len(w.spec.Msgs)-1 {
			f, err := w.js.PublishMsgAsync(fm.msg(subject), fm.opts(id)...)
			if err != nil {
				return err
			}
			futs = append(futs, f)
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := w.js.PublishMsg(ctx, fm.msg(subject), fm.opts(id)...)
		cancel()
		if err != nil {
			return err
		}
	}
	for _, f := range futs { // acknowledged by now: the server stored them before the awaited one
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return err
		case <-time.After(10 * time.Second):
			return errors.New("event not acknowledged within 10s")
		}
	}
	return msg.Ack()
}

// jobIDMark precedes the job id in a job message's body ({"v":1,"jobId":"...).
var jobIDMark = []byte(`"jobId":"`)

// jobIDOf is the job id of a job message, found in its first bytes without decoding it.
func jobIDOf(data []byte) string {
	i := bytes.Index(data, jobIDMark)
	if i < 0 {
		return ""
	}
	rest := data[i+len(jobIDMark):]
	j := bytes.IndexByte(rest, '"')
	if j < 0 {
		return ""
	}
	return string(rest[:j])
}

// floorProjectorBatch bounds the events the floor projector writes at once: jobwire's projector's
// (projector.maxBatch).
const floorProjectorBatch = 512

// floorProjector consumes events as jobwire's projector does (streams.ConsumeBatches and foldBatch):
// each time every event that has arrived (up to floorProjectorBatch), grouped by job, makes at most one state write per job, publishes the
// batch's writes together (streams.PublishAll) and then acks the batch's events. An idle projector
// writes one event at a time; a busy one writes a job with several events in the batch once.
type floorProjector struct {
	spec    jobsFloorSpec
	js      jetstream.JetStream
	batches *streams.Batches
	jobs    map[string]*floorJobState // writeBatch's only
	stats   floorStats
}

// floorJobState is what the floor projector keeps of a job until its last event: the events seen and
// the sequence of its last state write.
type floorJobState struct {
	events int
	seq    uint64
}

// floorBatchJob is a job's events in a batch.
type floorBatchJob struct {
	id    string
	state *floorJobState
	msgs  []jetstream.Msg
}

func startFloorProjector(js jetstream.JetStream, cons jetstream.Consumer, spec jobsFloorSpec) (*floorProjector, error) {
	p := &floorProjector{spec: spec, js: js, jobs: map[string]*floorJobState{}}
	batches, err := streams.ConsumeBatches(cons, floorProjectorBatch, p.writeBatch, jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
		fmt.Fprintln(os.Stderr, "floor-jobs projector: consume:", err)
	}))
	if err != nil {
		return nil, err
	}
	p.batches = batches
	return p, nil
}

// writeBatch groups a batch's events by job (the id is the last token of the subject), writes the
// state of each job due a write, all pipelined, each expecting the last sequence of the job's state
// subject and, for a job whose last event is in the batch, with the TTL; then acks each event whose
// job's write (if any) is stored.
func (p *floorProjector) writeBatch(batch []jetstream.Msg) {
	var jobs []*floorBatchJob
	byID := make(map[string]*floorBatchJob, len(batch))
	for _, m := range batch {
		subject := m.Subject()
		id := subject[strings.LastIndexByte(subject, '.')+1:]
		j := byID[id]
		if j == nil {
			st := p.jobs[id]
			if st == nil {
				st = &floorJobState{}
				p.jobs[id] = st
			}
			j = &floorBatchJob{id: id, state: st}
			byID[id] = j
			jobs = append(jobs, j)
		}
		j.msgs = append(j.msgs, m)
	}
	writes := make([]streams.Pipelined, len(jobs)) // no Msg: no write for the job
	for i, j := range jobs {
		before := j.state.events
		j.state.events += len(j.msgs)
		if p.writesDue(j.state.events) == p.writesDue(before) {
			continue
		}
		opts := []jetstream.PublishOpt{jetstream.WithExpectLastSequencePerSubject(j.state.seq)}
		if j.state.events >= p.spec.Events {
			opts = append(opts, jetstream.WithMsgTTL(p.spec.TTL))
		}
		writes[i] = streams.Pipelined{Msg: p.spec.Msgs[0].msg(p.spec.Prefix + j.id), Opts: opts}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	streams.PublishAll(ctx, p.js, writes)
	cancel()
	wrote := 0
	for i, j := range jobs {
		err := writes[i].Err
		switch {
		case err != nil:
			err = fmt.Errorf("state of %s: %w", j.id, err)
		case writes[i].Msg != nil:
			j.state.seq = writes[i].Seq
			wrote++
		}
		if j.state.events >= p.spec.Events {
			delete(p.jobs, j.id)
		}
		for _, m := range j.msgs {
			if err != nil {
				p.stats.add(err)
				continue
			}
			p.stats.add(m.Ack())
		}
	}
	p.stats.wrote(wrote)
}

// writesDue is how many of a job's States writes are due once e of its Events events are in (a batch
// that raises it writes once): the first event's (jobwire's projector writes a job's state when its
// submitted event comes, while the backlog is queued), the last event's (with the TTL), and the rest
// spread over the events between. With one write, only the last event's.
func (p *floorProjector) writesDue(e int) int {
	s, n := p.spec.States, p.spec.Events
	switch {
	case e >= n:
		return s
	case e <= 0 || s == 1:
		return 0
	case e == 1:
		return 1
	}
	return 1 + (e-1)*(s-2)/(n-2) // 1 < e < n, so n > 2; s-1 at e = n-1
}

func (p *floorProjector) stop() jobsFloorReport {
	p.batches.Stop()
	return p.stats.report()
}

func (w *floorWorker) stop() jobsFloorReport {
	w.cancel()
	<-w.loopDone
	close(w.jobs)
	w.running.Wait()
	return w.stats.report()
}
