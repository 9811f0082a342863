package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jobwire/jobwire/api"
	"github.com/jobwire/jobwire/services/internal/jobtypes"
)

// floorHead is what the gateway writes first on a job stream (sse.Header without CORS, then the retry
// field); the floor server writes the same bytes.
const floorHead = "HTTP/1.1 200 OK\r\n" +
	"Content-Type: text/event-stream; charset=utf-8\r\n" +
	"Cache-Control: no-cache, no-store\r\n" +
	"X-Accel-Buffering: no\r\n" +
	"X-Content-Type-Options: nosniff\r\n" +
	"Connection: close\r\n\r\n" +
	"retry: 2000\n\n"

// floorReport is a line the floor server writes to stdout: its address once listening, the updates it
// published inside the window (per job id) after "stop", the streams it closed after "complete".
type floorReport struct {
	Listening string         `json:"listening,omitempty"`
	Published map[string]int `json:"published,omitempty"`
	Completed *int           `json:"completed,omitempty"`
}

// FloorServerMain is `jobwire-bench floor-server` (hidden; the relay benchmark runs it as its floor
// row): the least a program can do to relay job state to SSE streams, as a measure of what the machine
// allows. Raw TCP, no NATS, no hub, no HTTP framework: it reads a request head, takes the job id from
// GET /v1/jobs/{id}/events, answers the gateway's response head and a first state frame, and keeps the
// socket. Commands on stdin, one a line:
//
//	window <start ns> <end ns>   start updating every job --updates times a second; count those inside
//	stop                         stop updating; report the count per job
//	complete                     send every stream a terminal state, close them all; report how many
//
// Each update is one state frame shaped like the gateway's (id, event: state, JobState JSON with
// progress.message "t=<unix ns>"), built once and written to every socket of its job by a few writer
// goroutines (GOMAXPROCS of them; a writer that is behind writes a socket its queued frames in one
// writev). Nothing is coalesced or dropped: when the writers are behind, the updates wait for them.
// It exits when stdin closes.
func FloorServerMain(args []string) int {
	fs := flag.NewFlagSet("floor-server", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:0", "listen address")
	updates := fs.Float64("updates", 10, "state updates per job per second")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *updates <= 0 {
		fmt.Fprintln(os.Stderr, "floor-server: --updates must be positive")
		return 2
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "floor-server:", err)
		return 1
	}
	srv := newFloorServer(*updates, runtime.GOMAXPROCS(0))
	go srv.accept(ln)
	out := &reporter{w: os.Stdout}
	out.report(floorReport{Listening: ln.Addr().String()})
	err = commands(func(cmd, arg string) error { return srv.command(cmd, arg, out) })
	if !errors.Is(err, errStdinClosed) {
		fmt.Fprintln(os.Stderr, "floor-server:", err)
		return 1
	}
	return 0
}

// floorServer is the state of the floor server.
type floorServer struct {
	updates float64
	writers []chan floorWrite
	rev     atomic.Uint64 // the revision of the last frame, as the KV revision in the gateway
	conns   atomic.Int64

	mu    sync.Mutex
	jobs  map[string]*floorJob
	order []*floorJob // by first stream

	stopUpdates context.CancelFunc
	tickers     sync.WaitGroup
}

// floorJob is one job's streams, each kept by one writer, and its latest frame.
type floorJob struct {
	id      string
	created time.Time
	mu      sync.Mutex
	shards  [][]*floorConn // by writer
	last    []byte         // the latest frame: a new stream's first
	// progress of the last update; published counts updates inside the window. Only the job's ticker
	// touches them while it runs.
	progress  api.Progress
	published int
}

// floorConn is one stream; only its writer touches it once it is attached.
type floorConn struct {
	nc   net.Conn
	dead bool
}

// floorWrite is one frame of job for the streams of one writer; close ends them after it; done, when
// set, is told once it is written.
type floorWrite struct {
	job   *floorJob
	frame []byte
	conns []*floorConn
	close bool
	done  *sync.WaitGroup
}

func newFloorServer(updates float64, writers int) *floorServer {
	s := &floorServer{updates: updates, jobs: map[string]*floorJob{}, writers: make([]chan floorWrite, max(writers, 1))}
	for i := range s.writers {
		s.writers[i] = make(chan floorWrite, 1024)
		go s.write(s.writers[i])
	}
	return s
}

func (s *floorServer) command(cmd, arg string, out *reporter) error {
	switch cmd {
	case "window":
		win := &window{}
		var start, end int64
		if _, err := fmt.Sscan(arg, &start, &end); err != nil {
			return fmt.Errorf("window %q: %w", arg, err)
		}
		win.start.Store(start)
		win.end.Store(end)
		s.start(win)
	case "stop":
		out.report(floorReport{Published: s.stop()})
	case "complete":
		n := s.complete()
		out.report(floorReport{Completed: &n})
	default:
		return fmt.Errorf("unknown command %q", cmd)
	}
	return nil
}

func (s *floorServer) accept(ln net.Listener) {
	for {
		nc, err := ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(10 * time.Millisecond) // EMFILE and the like: wait for a stream to go
			continue
		}
		go s.attach(nc)
	}
}

// attach reads the request of a new connection, answers the head and the job's latest frame, and
// hands the socket to a writer.
func (s *floorServer) attach(nc net.Conn) {
	_ = nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	id, err := readStreamRequest(nc)
	if err != nil {
		_, _ = nc.Write([]byte("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"))
		nc.Close()
		return
	}
	_ = nc.SetReadDeadline(time.Time{})
	j := s.job(id)
	c := &floorConn{nc: nc}
	w := int(s.conns.Add(1)) % len(s.writers)
	j.mu.Lock()
	defer j.mu.Unlock()
	if _, err := nc.Write(append([]byte(floorHead), j.last...)); err != nil {
		nc.Close()
		return
	}
	j.shards[w] = append(j.shards[w], c)
}

// readStreamRequest reads a request head up to its blank line and returns the job id of its path,
// GET /v1/jobs/{id}/events.
func readStreamRequest(nc net.Conn) (string, error) {
	buf := make([]byte, 0, 4096)
	for !bytes.Contains(buf, []byte("\r\n\r\n")) {
		if len(buf) == cap(buf) {
			return "", errors.New("request head too long")
		}
		n, err := nc.Read(buf[len(buf):cap(buf)])
		if err != nil {
			return "", err
		}
		buf = buf[:len(buf)+n]
	}
	line, _, _ := bytes.Cut(buf, []byte("\r\n"))
	path, ok := bytes.CutPrefix(line, []byte("GET /v1/jobs/"))
	if !ok {
		return "", fmt.Errorf("not a job stream: %q", line)
	}
	id, ok := bytes.CutSuffix(path, []byte("/events HTTP/1.1"))
	if !ok || len(id) == 0 || bytes.ContainsAny(id, "/ ") {
		return "", fmt.Errorf("not a job stream: %q", line)
	}
	return string(id), nil
}

// job returns the job named id, making it (active, no progress yet) on its first stream.
func (s *floorServer) job(id string) *floorJob {
	s.mu.Lock()
	defer s.mu.Unlock()
	if j := s.jobs[id]; j != nil {
		return j
	}
	j := &floorJob{id: id, created: time.Now().UTC(), shards: make([][]*floorConn, len(s.writers))}
	j.last = s.frame(j, api.StateActive)
	s.jobs[id] = j
	s.order = append(s.order, j)
	return j
}

// frame builds the state frame of j's next revision, as the gateway builds it from a JOB_STATE entry.
func (s *floorServer) frame(j *floorJob, state api.State) []byte {
	rev := s.rev.Add(1)
	now := time.Now().UTC()
	st := api.JobState{ID: j.id, Type: jobtypes.NoopType, Name: "relay bench", State: state, Progress: j.progress,
		Attempt: 1, CreatedAt: j.created, UpdatedAt: now, StartedAt: &j.created, Revision: rev, EventSeq: rev}
	if state.Terminal() {
		st.Result, st.FinishedAt = json.RawMessage(`{}`), &now
	}
	data, _ := json.Marshal(&st)
	return appendStateFrame(nil, rev, data)
}

// appendStateFrame appends the SSE event the gateway sends for a state: id, event and one data line
// (JSON has no line breaks).
func appendStateFrame(dst []byte, rev uint64, data []byte) []byte {
	dst = append(dst, "id: "...)
	dst = strconv.AppendUint(dst, rev, 10)
	dst = append(dst, "\nevent: state\ndata: "...)
	dst = append(dst, data...)
	return append(dst, '\n', '\n')
}

// publish makes frame j's latest and queues it to the writers of j's streams; it returns how many
// streams the job has.
func (s *floorServer) publish(j *floorJob, frame []byte, close bool, done *sync.WaitGroup) int {
	j.mu.Lock()
	j.last = frame
	shards := append([][]*floorConn(nil), j.shards...)
	j.mu.Unlock()
	n := 0
	for w, conns := range shards {
		if len(conns) == 0 {
			continue
		}
		n += len(conns)
		if done != nil {
			done.Add(1)
		}
		s.writers[w] <- floorWrite{job: j, frame: frame, conns: conns, close: close, done: done}
	}
	return n
}

// maxBatch is the most queued frames a writer takes at once.
const maxBatch = 256

// write is one writer: every frame to every stream it keeps, in order. When frames have queued up
// (the writer is behind), it takes them all and writes each stream its share in one writev
// (net.Buffers), as the gateway's writers do with a stream's pending frames.
func (s *floorServer) write(tasks <-chan floorWrite) {
	batch := make([]floorWrite, 0, maxBatch)
	for t := range tasks {
		batch = append(batch[:0], t)
	more:
		for len(batch) < maxBatch {
			select {
			case t := <-tasks:
				batch = append(batch, t)
			default:
				break more
			}
		}
		writeBatch(batch)
	}
}

// writeBatch writes a writer's queued frames, job by job, then tells whoever waits for them.
func writeBatch(batch []floorWrite) {
	if len(batch) == 1 {
		writeGroup(batch)
	} else {
		seen := map[*floorJob]bool{}
		for i, t := range batch {
			if seen[t.job] {
				continue
			}
			seen[t.job] = true
			var group []floorWrite
			for _, u := range batch[i:] {
				if u.job == t.job {
					group = append(group, u)
				}
			}
			writeGroup(group)
		}
	}
	for _, t := range batch {
		if t.done != nil {
			t.done.Done()
		}
	}
}

// writeGroup writes one job's queued frames, in order: each stream gets those queued since it joined,
// in one write. A job's streams only join at the end of its lists, so stream i of the newest list is
// in every earlier list longer than i. The terminal frame comes last; then the streams are closed.
func writeGroup(group []floorWrite) {
	last := group[len(group)-1]
	frames := make([][]byte, 0, len(group))
	for i, c := range last.conns {
		if c.dead {
			continue
		}
		frames = frames[:0]
		for _, t := range group {
			if i < len(t.conns) {
				frames = append(frames, t.frame)
			}
		}
		if err := writeFrames(c.nc, frames); err != nil || last.close {
			c.dead = true
			c.nc.Close()
		}
	}
}

// writeFrames writes frames to nc: one Write, or one writev (net.Buffers) for several.
func writeFrames(nc net.Conn, frames [][]byte) error {
	if len(frames) == 1 {
		_, err := nc.Write(frames[0])
		return err
	}
	nb := net.Buffers(frames) // WriteTo consumes nb, never the frames themselves
	_, err := nb.WriteTo(nc)
	return err
}

// start updates every job UpdatesPerSec times a second, spread over the period as the bench spreads
// its publishers, counting the updates whose time falls inside win.
func (s *floorServer) start(win *window) {
	ctx, cancel := context.WithCancel(context.Background())
	s.mu.Lock()
	jobs := append([]*floorJob(nil), s.order...)
	s.stopUpdates = cancel
	s.mu.Unlock()
	period := time.Duration(float64(time.Second) / s.updates)
	for i, j := range jobs {
		s.tickers.Add(1)
		go func() {
			defer s.tickers.Done()
			s.tick(ctx, j, time.Duration(i)*period/time.Duration(len(jobs)), period, win)
		}()
	}
}

func (s *floorServer) tick(ctx context.Context, j *floorJob, offset, period time.Duration, win *window) {
	select {
	case <-time.After(offset):
	case <-ctx.Done():
		return
	}
	t := time.NewTicker(period)
	defer t.Stop()
	for n := 1; ; n++ {
		ns := time.Now().UnixNano()
		j.progress = api.NewProgress(n, 1_000_000, "t="+strconv.FormatInt(ns, 10))
		s.publish(j, s.frame(j, api.StateActive), false, nil)
		if win.contains(ns) {
			j.published++
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
	}
}

// stop ends the updates and returns how many of each job's fell inside the window.
func (s *floorServer) stop() map[string]int {
	s.mu.Lock()
	cancel := s.stopUpdates
	s.stopUpdates = nil
	s.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	s.tickers.Wait()
	out := map[string]int{}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, j := range s.order {
		out[j.id] = j.published
	}
	return out
}

// complete sends every stream its job's terminal state (completed, with the last progress) and closes
// it, and returns how many streams it had.
func (s *floorServer) complete() int {
	s.stop()
	var done sync.WaitGroup
	s.mu.Lock()
	jobs := append([]*floorJob(nil), s.order...)
	s.mu.Unlock()
	n := 0
	for _, j := range jobs {
		n += s.publish(j, s.frame(j, api.StateCompleted), true, &done)
	}
	done.Wait()
	return n
}
