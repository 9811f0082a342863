package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"hash/fnv"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// jobsFloorSpec is what a floor-jobs process is told, as its first command (spec <JSON>): the NATS
// server, the stream and durable consumer it reads, and what it writes.
//
// A worker runs Concurrency jobs at once and writes per job Msgs on Prefix + the job id, every one but
// the last asynchronously, the last (the terminal event) awaited before the job message is acked. A
// projector writes per event of a job its share of States writes of Msgs[0] on Prefix + the job id,
// each expecting the subject's last sequence, the job's last one with TTL (which marks the job done
// for the bench), before it acks the event.
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
// the messages it handled and its errors.
type jobsFloorReport struct {
	Ready      bool   `json:"ready,omitempty"`
	Handled    int    `json:"handled"`
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
// takes it from the event's subject and writes the job's state. Commands on stdin, one a line:
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

func (s *floorStats) report() jobsFloorReport {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.r
}

// floorWorker takes jobs as jobwire's worker does (a fetch of exactly as many as it has free slots)
// and writes each job's events.
type floorWorker struct {
	spec     jobsFloorSpec
	js       jetstream.JetStream
	slots    chan struct{}
	running  sync.WaitGroup
	cancel   context.CancelFunc
	loopDone chan struct{}
	stats    floorStats
}

func startFloorWorker(js jetstream.JetStream, cons jetstream.Consumer, spec jobsFloorSpec) *floorWorker {
	ctx, cancel := context.WithCancel(context.Background())
	w := &floorWorker{spec: spec, js: js, slots: make(chan struct{}, spec.Concurrency), cancel: cancel, loopDone: make(chan struct{})}
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
				w.running.Add(1)
				go func() {
					defer w.running.Done()
					defer func() { <-w.slots }()
					w.stats.add(w.handle(msg))
				}()
			}
		}
		cancel()
		for range free {
			<-w.slots
		}
		if err != nil && ctx.Err() == nil {
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

// floorProjectorShards is how many jobs the floor projector writes at once: jobwire's projector's
// shards (projector.projectorShards).
const floorProjectorShards = 8

// floorProjector consumes events as jobwire's projector does (one Consume, the events of a job in one
// shard, so in order) and writes each job's states.
type floorProjector struct {
	spec   jobsFloorSpec
	js     jetstream.JetStream
	cc     jetstream.ConsumeContext
	shards []chan jetstream.Msg
	wg     sync.WaitGroup
	stats  floorStats
}

// floorJobState is what a shard of the floor projector keeps of a job until its last event: the events
// seen and the sequence of its last state write.
type floorJobState struct {
	events int
	seq    uint64
}

func startFloorProjector(js jetstream.JetStream, cons jetstream.Consumer, spec jobsFloorSpec) (*floorProjector, error) {
	p := &floorProjector{spec: spec, js: js, shards: make([]chan jetstream.Msg, floorProjectorShards)}
	for i := range p.shards {
		ch := make(chan jetstream.Msg, 128)
		p.shards[i] = ch
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			jobs := map[string]*floorJobState{}
			for m := range ch {
				p.stats.add(p.handle(m, jobs))
			}
		}()
	}
	dispatch := func(m jetstream.Msg) {
		h := fnv.New32a()
		h.Write([]byte(m.Subject()))
		p.shards[h.Sum32()%uint32(len(p.shards))] <- m
	}
	cc, err := cons.Consume(dispatch, jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
		fmt.Fprintln(os.Stderr, "floor-jobs projector: consume:", err)
	}))
	if err != nil {
		return nil, fmt.Errorf("consume: %w", err)
	}
	p.cc = cc
	return p, nil
}

// handle writes the state writes due for an event of a job (its share of States over Events), each
// expecting the last sequence of the job's state subject, then acks the event.
func (p *floorProjector) handle(m jetstream.Msg, jobs map[string]*floorJobState) error {
	subject := m.Subject()
	id := subject[strings.LastIndexByte(subject, '.')+1:]
	j := jobs[id]
	if j == nil {
		j = &floorJobState{}
		jobs[id] = j
	}
	j.events++
	end := j.events >= p.spec.Events
	if end {
		delete(jobs, id)
	}
	writes := j.events*p.spec.States/p.spec.Events - (j.events-1)*p.spec.States/p.spec.Events
	for k := range writes {
		opts := []jetstream.PublishOpt{jetstream.WithExpectLastSequencePerSubject(j.seq)}
		if end && k == writes-1 {
			opts = append(opts, jetstream.WithMsgTTL(p.spec.TTL))
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		ack, err := p.js.PublishMsg(ctx, p.spec.Msgs[0].msg(p.spec.Prefix+id), opts...)
		cancel()
		if err != nil {
			return fmt.Errorf("state of %s: %w", id, err)
		}
		j.seq = ack.Sequence
	}
	return m.Ack()
}

func (p *floorProjector) stop() jobsFloorReport {
	p.cc.Drain()
	<-p.cc.Closed()
	for _, ch := range p.shards {
		close(ch)
	}
	p.wg.Wait()
	return p.stats.report()
}

func (w *floorWorker) stop() jobsFloorReport {
	w.cancel()
	<-w.loopDone
	w.running.Wait()
	return w.stats.report()
}
