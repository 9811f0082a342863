package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jobwire/jobwire/api"
	"github.com/jobwire/jobwire/services/internal/auth"
	"github.com/jobwire/jobwire/services/internal/jobtypes"
	"github.com/jobwire/jobwire/streams"
)

// Submit paths of the jobs benchmark.
const (
	// SubmitHTTP posts to the gateway's POST /v1/jobs (JSON, bearer token), as clients do.
	SubmitHTTP = "http"
	// SubmitJS publishes the job.submitted event and the JOBS message straight to JetStream,
	// asynchronously, as the gateway's job store does but without HTTP and without waiting for each ack.
	SubmitJS = "js"
	// SubmitBacklog is SubmitJS with no worker running; the workers start once every job is queued.
	SubmitBacklog = "backlog"
	// SubmitBatch posts Options.BatchSize jobs at a time to the gateway's POST /v1/jobs/batch, from
	// batchSubmitters concurrent requests.
	SubmitBatch = "batch"
)

// batchSubmitters is how many batch requests are in flight at once: each carries up to a thousand
// jobs, so a few keep the gateway busy.
const batchSubmitters = 4

// Kinds of job.
const (
	KindNoop   = "noop"
	KindImport = "import"
)

// Throughput is a run of Jobs jobs submitted as fast as the submitters can.
type Throughput struct {
	Kind         string    `json:"kind"`
	Submit       string    `json:"submit"`
	Workers      int       `json:"workers"`
	Jobs         int       `json:"jobs"`
	Failed       int       `json:"failed"`
	Seconds      float64   `json:"seconds"`
	JobsPerSec   float64   `json:"jobsPerSec"`
	SubmitPerSec float64   `json:"submitPerSec"`
	Latency      Quantiles `json:"latency"`
	Cost         *Cost     `json:"costPerJob,omitempty"`
	// Traces is what the row's processes exported, when it ran with tracing on.
	Traces *TraceExport `json:"traces,omitempty"`
	// CPU is the cores each process used during the run (workers summed).
	CPU map[string]float64 `json:"cpuCores"`
}

// Rate is a run at a fixed submit rate.
type Rate struct {
	Kind         string             `json:"kind"`
	Submit       string             `json:"submit"`
	Workers      int                `json:"workers"`
	TargetPerSec float64            `json:"targetPerSec"`
	OfferedPerSe float64            `json:"offeredPerSec"`
	Jobs         int                `json:"jobs"`
	Completed    int                `json:"completed"`
	Late         int                `json:"submittedLate"`
	Latency      Quantiles          `json:"latency"`
	CPU          map[string]float64 `json:"cpuCores"`
}

// Cost is what one job costs the servers, from deltas around a run divided by its jobs.
type Cost struct {
	// Msgs are messages written per job per stream (last sequence delta: counts what work-queue
	// retention and KV history 1 delete later).
	Msgs map[string]float64 `json:"msgs"`
	// Bytes are bytes still stored per job per stream after the run (JOBS: 0, deleted on ack; for the
	// backlog run: measured while queued).
	Bytes         map[string]float64 `json:"bytes"`
	NATSInMsgs    float64            `json:"natsInMsgs"`
	NATSInBytes   float64            `json:"natsInBytes"`
	NATSOutMsgs   float64            `json:"natsOutMsgs"`
	NATSOutBytes  float64            `json:"natsOutBytes"`
	RedisCommands int64              `json:"redisCommandsTotal"`
}

// jobsBench drives the jobs benchmark against a stack with workers running.
type jobsBench struct {
	s       *stack
	o       Options
	tr      *tracker
	http    *http.Client
	tokens  map[string]string
	owners  map[string]string
	imports atomic.Int64
	runID   string
	// lastJob is a job of the last throughput run: the floor copies the sizes of its messages.
	lastJob string
	// priority is the level of the HTTP submits (the controls rows).
	priority api.Priority
}

func newJobsBench(s *stack, o Options, tr *tracker) *jobsBench {
	b := &jobsBench{s: s, o: o, tr: tr, runID: strconv.FormatInt(time.Now().UnixNano()%1e9, 36),
		http:   &http.Client{Transport: &http.Transport{MaxIdleConns: 512, MaxIdleConnsPerHost: 512, DisableCompression: true}},
		tokens: map[string]string{}, owners: map[string]string{}}
	for kind, user := range map[string]string{KindNoop: "bench-jobs", KindImport: "bench-import"} {
		b.tokens[kind] = s.token(user)
		b.owners[kind], _ = streams.OwnerToken(user)
	}
	return b
}

// request returns the job type and input of the next job of kind.
func (b *jobsBench) request(kind string) (string, json.RawMessage) {
	if kind == KindNoop {
		return jobtypes.NoopType, json.RawMessage(`{}`)
	}
	n := b.imports.Add(1)
	var sb strings.Builder
	sb.WriteString("artist,title,album\n")
	for i := range b.o.ImportTracks {
		fmt.Fprintf(&sb, "Bench Artist %d,Track %s-%d-%d,Bench Album\n", i%17, b.runID, n, i)
	}
	in, _ := json.Marshal(api.PlaylistImport{Name: "bench " + strconv.FormatInt(n, 10), Format: api.FormatCSV, Content: sb.String()})
	return api.JobTypePlaylistImport, in
}

// submit submits one job of kind by path (not SubmitBatch) and returns its id.
func (b *jobsBench) submit(ctx context.Context, kind, path string) (string, error) {
	typ, input := b.request(kind)
	if path != SubmitHTTP {
		return submitDirect(b.s.js, b.owners[kind], typ, input)
	}
	body, _ := json.Marshal(api.SubmitRequest{Type: typ, Input: input, Priority: b.priority})
	data, err := b.post(ctx, kind, "/v1/jobs", body, http.StatusAccepted)
	if err != nil {
		return "", err
	}
	var st struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(data, &st); err != nil || st.ID == "" {
		return "", fmt.Errorf("POST /v1/jobs: no job id in %.200s", data)
	}
	return st.ID, nil
}

// submitBatch submits len(ids) jobs of kind in one POST /v1/jobs/batch and fills ids with theirs.
// Every item must be queued (202).
func (b *jobsBench) submitBatch(ctx context.Context, kind string, ids []string) error {
	req := api.SubmitBatchRequest{Jobs: make([]api.BatchItem, len(ids))}
	for i := range req.Jobs {
		req.Jobs[i].Type, req.Jobs[i].Input = b.request(kind)
	}
	body, _ := json.Marshal(req)
	data, err := b.post(ctx, kind, "/v1/jobs/batch", body, http.StatusOK)
	if err != nil {
		return err
	}
	var resp api.SubmitBatchResponse
	if err := json.Unmarshal(data, &resp); err != nil {
		return fmt.Errorf("POST /v1/jobs/batch: %w in %.200s", err, data)
	}
	if len(resp.Jobs) != len(ids) {
		return fmt.Errorf("POST /v1/jobs/batch: %d results for %d jobs", len(resp.Jobs), len(ids))
	}
	for i, r := range resp.Jobs {
		if r.Status != http.StatusAccepted || r.Job == nil || r.Job.ID == "" {
			return fmt.Errorf("POST /v1/jobs/batch: item %d of %d: status %d, error %v", i, len(ids), r.Status, r.Error)
		}
		ids[i] = r.Job.ID
	}
	return nil
}

// post sends body to the gateway's route as the user of kind and returns the answer's body, which
// must come with status want.
func (b *jobsBench) post(ctx context.Context, kind, route string, body []byte, want int) ([]byte, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, b.s.gatewayURL+route, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+b.tokens[kind])
	resp, err := b.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != want {
		return nil, fmt.Errorf("POST %s: HTTP %d: %.200s", route, resp.StatusCode, data)
	}
	return data, nil
}

// submitAll submits n jobs of kind by path as fast as the submitters go and returns their ids and when
// each was sent (a batch's items: when the batch was).
func (b *jobsBench) submitAll(ctx context.Context, kind, path string, n int) ([]string, []time.Time, error) {
	ids, sent := make([]string, n), make([]time.Time, n)
	if path == SubmitBatch {
		size := b.o.BatchSize
		err := b.parallel(ctx, batchSubmitters, (n+size-1)/size, func(k int) error {
			lo, hi := k*size, min((k+1)*size, n)
			at := time.Now()
			for i := lo; i < hi; i++ {
				sent[i] = at
			}
			return b.submitBatch(ctx, kind, ids[lo:hi])
		})
		return ids, sent, err
	}
	submitters := b.o.Submitters
	if path != SubmitHTTP {
		submitters = 4 // asynchronous publishes: a few goroutines saturate the connection
	}
	err := b.parallel(ctx, submitters, n, func(i int) error {
		sent[i] = time.Now()
		id, err := b.submit(ctx, kind, path)
		ids[i] = id
		return err
	})
	return ids, sent, err
}

// submitDirect publishes what jobstore.Submit publishes (the JOBS message, then the job.submitted
// event naming its sequence, each with its Nats-Msg-Id), waiting only for the message's ack.
func submitDirect(js jetstream.JetStream, owner, typ string, input json.RawMessage) (string, error) {
	msg := newJobMessage(owner, typ, input)
	data, _ := json.Marshal(msg)
	q := nats.NewMsg(streams.QueueSubject(typ))
	q.Data = data
	fut, err := publishAsync(js, q, jetstream.WithMsgID(msg.JobID))
	if err != nil {
		return "", err
	}
	var queueSeq uint64
	select {
	case ack := <-fut.Ok():
		queueSeq = ack.Sequence
	case err := <-fut.Err():
		return "", fmt.Errorf("queue job: %w", err)
	}
	ev := msg.SubmittedEvent(queueSeq)
	m, err := ev.Msg()
	if err != nil {
		return "", err
	}
	if _, err := publishAsync(js, m, jetstream.WithMsgID(ev.MsgID(0, 0))); err != nil {
		return "", err
	}
	return msg.JobID, nil
}

// newJobMessage is a new job's JOBS message, as the gateway's job store makes it.
func newJobMessage(owner, typ string, input json.RawMessage) streams.JobMessage {
	now := time.Now().UTC()
	return streams.JobMessage{V: 1, JobID: streams.NewJobID(now), Type: typ, Owner: owner, Input: input, CreatedAt: now}
}

// publishAsync publishes without waiting for the ack; when too many acks are outstanding it waits a
// little (StallWait) and tries again for up to 30 s.
func publishAsync(js jetstream.JetStream, m *nats.Msg, opts ...jetstream.PublishOpt) (jetstream.PubAckFuture, error) {
	opts = append(opts, jetstream.WithStallWait(time.Second))
	deadline := time.Now().Add(30 * time.Second)
	for {
		fut, err := js.PublishMsgAsync(m, opts...)
		if !errors.Is(err, jetstream.ErrTooManyStalledMsgs) || time.Now().After(deadline) {
			return fut, err
		}
	}
}

// costProbe snapshots what Cost is computed from.
type costProbe struct {
	streams map[string]streamState
	varz    varz
	redis   map[string]int64
}

func (b *jobsBench) probe(ctx context.Context) (costProbe, error) {
	var p costProbe
	var err error
	if p.streams, err = b.s.streamStates(ctx); err != nil {
		return p, err
	}
	if p.varz, err = b.s.varz(ctx); err != nil {
		return p, err
	}
	p.redis, err = b.s.redisCommands(ctx)
	return p, err
}

func costBetween(a, z costProbe, jobs int) *Cost {
	n := float64(jobs)
	c := &Cost{Msgs: map[string]float64{}, Bytes: map[string]float64{},
		NATSInMsgs: float64(z.varz.InMsgs-a.varz.InMsgs) / n, NATSInBytes: float64(z.varz.InBytes-a.varz.InBytes) / n,
		NATSOutMsgs: float64(z.varz.OutMsgs-a.varz.OutMsgs) / n, NATSOutBytes: float64(z.varz.OutBytes-a.varz.OutBytes) / n}
	for name, st := range z.streams {
		c.Msgs[name] = float64(st.LastSeq-a.streams[name].LastSeq) / n
		c.Bytes[name] = (float64(st.Bytes) - float64(a.streams[name].Bytes)) / n
	}
	if a.redis != nil {
		c.RedisCommands = commandDelta(a.redis, z.redis)
	}
	return c
}

// throughput submits n jobs of kind as fast as the submitters can and waits until all ended.
func (b *jobsBench) throughput(ctx context.Context, kind, path string, workers, n int) (Throughput, error) {
	res := Throughput{Kind: kind, Submit: path, Workers: workers, Jobs: n}
	b.o.logf("jobs: %s, %d workers: %d jobs as fast as possible via %s", kind, workers, n, path)
	p0, err := b.probe(ctx)
	if err != nil {
		return res, err
	}
	base := b.tr.Count()
	cpu0, t0 := b.s.cpuSnapshot(), time.Now()
	start := time.Now()
	ids, sent, err := b.submitAll(ctx, kind, path, n)
	if err != nil {
		return res, err
	}
	b.lastJob = ids[n-1]
	if path == SubmitJS || path == SubmitBacklog {
		select {
		case <-b.s.js.PublishAsyncComplete():
		case <-time.After(30 * time.Second):
			return res, fmt.Errorf("asynchronous submits not acknowledged within 30s")
		}
	}
	res.SubmitPerSec = float64(n) / time.Since(start).Seconds()
	var backlog costProbe
	if path == SubmitBacklog {
		time.Sleep(200 * time.Millisecond)
		if backlog, err = b.probe(ctx); err != nil {
			return res, err
		}
		if err := b.s.startWorkers(ctx, workers, b.o.Concurrency); err != nil {
			return res, err
		}
	}
	if path == SubmitBacklog {
		cpu0, t0 = b.s.cpuSnapshot(), time.Now()
	}
	if err := b.tr.waitCount(base+n, b.o.jobTimeout(n)); err != nil {
		return res, fmt.Errorf("%s via %s: %w", kind, path, err)
	}
	res.CPU = cpuCores(cpu0, b.s.cpuSnapshot(), time.Since(t0))
	var lat []time.Duration
	first, last := time.Time{}, time.Time{}
	for i, id := range ids {
		at, _, failed := b.tr.ended(id)
		if failed {
			res.Failed++
		}
		lat = append(lat, at.Sub(sent[i]))
		if first.IsZero() || at.Before(first) {
			first = at
		}
		if at.After(last) {
			last = at
		}
	}
	if path == SubmitBacklog {
		// Draining: from the first job done to the last (worker start-up is not counted).
		res.Seconds = last.Sub(first).Seconds()
		res.JobsPerSec = float64(n-1) / res.Seconds
	} else {
		res.Seconds = last.Sub(start).Seconds()
		res.JobsPerSec = float64(n) / res.Seconds
		res.Latency = quantilesDur(lat)
	}
	time.Sleep(300 * time.Millisecond) // the projector's last writes
	p1, err := b.probe(ctx)
	if err != nil {
		return res, err
	}
	res.Cost = costBetween(p0, p1, n)
	if path == SubmitBacklog {
		c := costBetween(p0, backlog, n)
		res.Cost.Bytes[streams.StreamJobs] = c.Bytes[streams.StreamJobs]
	}
	b.o.logf("jobs: %s via %s, %d workers: %.0f jobs/s (submit %.0f/s), submit→completed p50 %.1f ms p99 %.1f ms, %d failed",
		kind, path, workers, res.JobsPerSec, res.SubmitPerSec, res.Latency.P50, res.Latency.P99, res.Failed)
	return res, nil
}

// parallel runs fn(0..n-1) on k goroutines, stopping at the first error.
func (b *jobsBench) parallel(ctx context.Context, k, n int, fn func(i int) error) error {
	var next atomic.Int64
	var firstErr error
	var once sync.Once
	var failed atomic.Bool
	var wg sync.WaitGroup
	for range k {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !failed.Load() && ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := fn(i); err != nil {
					once.Do(func() { firstErr = err; failed.Store(true) })
					return
				}
			}
		}()
	}
	wg.Wait()
	if firstErr == nil {
		firstErr = ctx.Err()
	}
	return firstErr
}

// rate submits jobs of kind at perSec for d and reports submit→completed latencies.
func (b *jobsBench) rate(ctx context.Context, kind, path string, workers int, perSec float64, d time.Duration) (Rate, error) {
	n := max(1, int(perSec*d.Seconds()))
	res := Rate{Kind: kind, Submit: path, Workers: workers, TargetPerSec: perSec, Jobs: n}
	b.o.logf("jobs: %s, %d workers: %.0f jobs/s for %s via %s", kind, workers, perSec, d, path)
	base := b.tr.Count()
	cpu0, t0 := b.s.cpuSnapshot(), time.Now()
	tickets := make(chan int, n)
	due := make([]time.Time, n)
	sent := make([]time.Time, n)
	ids := make([]string, n)
	start := time.Now()
	go func() {
		defer close(tickets)
		for i := range n {
			due[i] = start.Add(time.Duration(float64(i) / perSec * float64(time.Second)))
			if w := time.Until(due[i]); w > 0 {
				time.Sleep(w)
			}
			tickets <- i
		}
	}()
	var wg sync.WaitGroup
	var errOnce sync.Once
	var firstErr error
	var late atomic.Int64
	for range b.o.Submitters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range tickets {
				sent[i] = time.Now()
				if sent[i].Sub(due[i]) > 5*time.Millisecond {
					late.Add(1)
				}
				id, err := b.submit(ctx, kind, path)
				if err != nil {
					errOnce.Do(func() { firstErr = err })
					continue
				}
				ids[i] = id
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return res, firstErr
	}
	if path != SubmitHTTP {
		<-b.s.js.PublishAsyncComplete()
	}
	if n > 1 {
		res.OfferedPerSe = float64(n-1) / sent[n-1].Sub(sent[0]).Seconds()
	}
	res.Late = int(late.Load())
	err := b.tr.waitCount(base+n, b.o.jobTimeout(n))
	res.CPU = cpuCores(cpu0, b.s.cpuSnapshot(), time.Since(t0))
	var lat []time.Duration
	for i, id := range ids {
		if at, ok, _ := b.tr.ended(id); ok {
			lat = append(lat, at.Sub(sent[i]))
		}
	}
	res.Completed = len(lat)
	res.Latency = quantilesDur(lat)
	b.o.logf("jobs: %s at %.0f/s (offered %.0f/s, %d late), %d workers: submit→completed p50 %.2f ms p99 %.2f ms max %.1f ms",
		kind, perSec, res.OfferedPerSe, res.Late, workers, res.Latency.P50, res.Latency.P99, res.Latency.Max)
	return res, err
}

// controlsLimit is a rate limit far above what the bench reaches: every start takes a ticket and none
// waits, so its row shows what the ticket costs.
var controlsLimit = api.RateLimit{Limit: api.MaxRateLimit, Interval: api.Duration(time.Second)}

// controls runs the HTTP noop row twice more: every job at priority high (its own consumer and queue
// subject), then under controlsLimit.
func (b *jobsBench) controls(ctx context.Context, workers, n int) ([]Throughput, error) {
	b.priority = api.PriorityHigh
	high, err := b.throughput(ctx, KindNoop, SubmitHTTP, workers, n)
	b.priority = ""
	if err != nil {
		return nil, err
	}
	high.Kind += ", priority high"
	if err := b.setRateLimit(ctx, &controlsLimit); err != nil {
		return nil, err
	}
	time.Sleep(500 * time.Millisecond) // the workers' watches hear it
	limited, err := b.throughput(ctx, KindNoop, SubmitHTTP, workers, n)
	if err != nil {
		return nil, err
	}
	limited.Kind += fmt.Sprintf(", rate limit %d/s", controlsLimit.Limit)
	return []Throughput{high, limited}, b.setRateLimit(ctx, nil)
}

// setRateLimit sets the noop type's rate limit as an operator, or lifts it (nil).
func (b *jobsBench) setRateLimit(ctx context.Context, limit *api.RateLimit) error {
	tok, err := b.s.signer.Sign("bench-ops", time.Hour, "", "", auth.DefaultOperatorRole)
	if err != nil {
		return err
	}
	c := api.NewClient(b.s.gatewayURL, tok)
	if limit == nil {
		_, err = c.RemoveRateLimit(ctx, jobtypes.NoopType)
	} else {
		_, err = c.SetRateLimit(ctx, jobtypes.NoopType, *limit)
	}
	return err
}
