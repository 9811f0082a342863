package deploytest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/jobwire/jobwire/api"
	"github.com/jobwire/jobwire/streams"
	"github.com/jobwire/jobwire/streams/streamstest"
)

// Size of the cluster run.
const (
	clusterJobs       = 50
	watchersPerJob    = 4   // 200 SSE clients, half of them starting on each gateway
	tracksPerPlaylist = 150 // with JOBWIRE_IMPORT_TRACK_DELAY=5ms: about a second per job
	dupsPerPlaylist   = 4
	// Faster than the 6 worker slots drain, so jobs queue up and the faults hit work in flight.
	submitEvery = 100 * time.Millisecond
)

// TestClusterFaults runs deployments/nats/cluster/n1..n3.conf as three nats-server processes (ports
// rewritten), the topology at three replicas, two gateways, two workers, the projector and (when
// redis-server is installed) the mirror, each as its own NATS user. While 50 imports run and 200 SSE
// clients watch them, it kills a NATS node and brings it back, kill -9s a worker, and restarts a
// gateway (its clients resume on the other one with Last-Event-ID). In the end every job completed,
// every library is exact, every client saw its job's terminal state, and `jobwire admin rebuild`
// finds JOB_STATE equal to the replay of JOB_EVENTS.
func TestClusterFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster fault test: 3 nats-servers, 6 services and 200 SSE clients for about a minute")
	}
	start := time.Now()
	nodes := startCluster(t)
	s := &stack{natsURL: joinURLs(nodes...), users: confUsers(t), common: []string{
		"JOBWIRE_REPLICAS=3",
		"JOBWIRE_IMPORT_TRACK_DELAY=5ms",
		"JOBWIRE_WORKER_CONCURRENCY=3",
		// A crashed worker's job comes back after the lease; 5 s instead of 30 s keeps the test short.
		"JOBWIRE_WORKER_ACK_WAIT=5s",
		"JOBWIRE_WORKER_SHUTDOWN_GRACE=5s",
	}}
	// The topology starts at R1, as a single-node install leaves it; ensuring it again with
	// JOBWIRE_REPLICAS=3 (here by the admin's rebuild) must upgrade every stream and bucket in place.
	common := s.common
	s.common = append(append([]string{}, common...), "JOBWIRE_REPLICAS=1")
	if out, code := s.admin(t, 2*time.Minute, "admin", "ensure"); code != 0 {
		t.Fatalf("admin creating an R1 topology (jobwire admin ensure) exited %d:\n%s", code, out)
	}
	s.common = common
	admin := s.jetstream(t, "admin")
	checkReplicas(t, admin, 1)
	if out, code := s.admin(t, 2*time.Minute, "admin", "rebuild"); code != 0 {
		t.Fatalf("admin upgrading the topology to R3 (jobwire admin rebuild) exited %d:\n%s", code, out)
	}
	checkReplicas(t, admin, 3)

	redisAddr := startRedis(t)

	s.startService(t, "projector", "projector", "projector")
	if redisAddr != "" {
		s.startService(t, "mirror", "mirror", "mirror", "REDIS_URL=redis://"+redisAddr+"/0")
	}
	worker1 := s.startService(t, "worker-1", "worker", "worker")
	s.startService(t, "worker-2", "worker", "worker")
	gw1 := s.startService(t, "gateway-1", "gateway", "gateway")
	gw2 := s.startService(t, "gateway-2", "gateway", "gateway")
	bases := [2]string{gw1.base, gw2.base}
	t.Logf("cluster and services up in %s", time.Since(start).Round(time.Millisecond))

	// The run: a submitter and 200 watchers in the background, the faults here.
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	r := newRun(t, bases)
	runStart := time.Now()
	go r.submitAll(ctx)

	r.waitSubmitted(ctx, 10)
	long := startLongJob(t, ctx, bases)
	t.Logf("%s: kill -9 NATS node %s", since(runStart), nodes[1].name)
	nodes[1].proc.Kill()
	long.cancel(t, ctx)
	t.Logf("%s: cancel of a running import accepted during the election", since(runStart))
	waitLeaders(t, admin, nodes[1].name)
	t.Logf("%s: every stream and bucket has a leader again", since(runStart))

	r.waitSubmitted(ctx, 18)
	// Crash it while it runs jobs (its /metrics says how many), so that their leases must expire.
	streamstest.WaitFor(t, 60*time.Second, func() error {
		if n := runningJobs(worker1.base); n < 1 {
			return fmt.Errorf("worker-1: %d jobs running", n)
		}
		return nil
	})
	t.Logf("%s: kill -9 worker-1 (running %d jobs)", since(runStart), runningJobs(worker1.base))
	worker1.Kill()

	r.waitSubmitted(ctx, 26)
	t.Logf("%s: restart NATS node %s", since(runStart), nodes[1].name)
	nodes[1].start(t, true)
	consumers, active := kvStateConsumers(t, admin), r.active.Load()
	t.Logf("%s: %s back; KV_JOB_STATE has %d consumers while %d SSE clients are open", since(runStart), nodes[1].name, consumers, active)
	if consumers > 12 {
		t.Errorf("KV_JOB_STATE has %d consumers with %d SSE clients open: consumers must not follow clients", consumers, active)
	}

	r.waitSubmitted(ctx, 34)
	t.Logf("%s: restart gateway-1 (SIGTERM, start again)", since(runStart))
	if err := gw1.Stop(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	if err := gw1.Restart(); err != nil {
		t.Fatal(err)
	}
	gw1.waitReady(t)

	r.waitSubmitted(ctx, 40)
	t.Logf("%s: start worker-1 again", since(runStart))
	if err := worker1.Restart(); err != nil {
		t.Fatal(err)
	}
	worker1.waitReady(t)

	<-r.submitted
	if err := r.submitErr(); err != nil {
		t.Fatalf("submissions: %v", err)
	}
	t.Logf("%s: all %d jobs submitted", since(runStart), clusterJobs)
	r.wg.Wait()
	t.Logf("%s: all %d SSE clients done", since(runStart), len(r.watchers))

	// The run's deadline may be spent when something hung: the checks get their own.
	ctx, cancel = context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if !r.check(t) {
		r.diagnose(t, ctx, admin)
	}
	long.check(t, ctx)
	if redelivered := checkJobs(t, ctx, r); redelivered == 0 {
		t.Error("no job ran a second attempt: the worker kill hit no running job")
	} else {
		t.Logf("%d jobs were redelivered after the worker kill", redelivered)
	}
	t.Logf("%s: every job completed, every library exact", since(runStart))

	waitConsumerCaughtUp(t, admin, streams.ConsumerProjector)
	t.Logf("%s: projector caught up", since(runStart))
	if redisAddr != "" {
		waitConsumerCaughtUp(t, admin, streams.ConsumerMirror)
		t.Logf("%s: mirror caught up", since(runStart))
		n, err := redis.NewClient(&redis.Options{Addr: redisAddr}).ZCard(ctx, "bull:sync:completed").Result()
		if err != nil || n < 1 || n > 10 {
			t.Errorf("mirror: bull:sync:completed holds %d jobs (%v), want 1..10 (JOBWIRE_LEGACY_MAX_COUNT)", n, err)
		}
	}
	out, code := s.admin(t, 2*time.Minute, "admin", "rebuild")
	if code != 0 || !strings.Contains(out, "JOB_STATE matches the replay") {
		t.Errorf("jobwire admin rebuild exited %d:\n%s", code, out)
	}
	mustNoViolations(t, nodes...)
	t.Logf("cluster test done in %s (run %s)", since(start), since(runStart))
}

func since(t time.Time) time.Duration { return time.Since(t).Round(100 * time.Millisecond) }

// longJob is an import long enough to still run while a NATS node dies, and be cancelled then.
type longJob struct {
	bases [2]string
	c     *api.Client
	id    string
}

// startLongJob submits a 1,500-track import (about 8 s at 5 ms a track) and waits until it runs.
func startLongJob(t *testing.T, ctx context.Context, bases [2]string) *longJob {
	t.Helper()
	c := api.NewClient(bases[0], token(t, "ucancel"))
	st, _, err := c.Submit(ctx, newPlaylist("ucancel", 1500, 0).request("long"), "")
	if err != nil {
		t.Fatal(err)
	}
	streamstest.WaitFor(t, 30*time.Second, func() error {
		got, err := c.Get(ctx, st.ID)
		if err == nil && got.Progress.Done == 0 {
			err = fmt.Errorf("state %s progress %d", got.State, got.Progress.Done)
		}
		return err
	})
	return &longJob{bases: bases, c: c, id: st.ID}
}

// cancel asks for the job to stop while the cluster elects new leaders: 5xx answers and dropped
// connections are retried, on both gateways, for up to a minute; the answer must be 202, or 409 for a
// job that an earlier, unanswered try already cancelled.
func (j *longJob) cancel(t *testing.T, ctx context.Context) {
	t.Helper()
	streamstest.WaitFor(t, time.Minute, func() error {
		j.c.BaseURL = j.bases[(slices.Index(j.bases[:], j.c.BaseURL)+1)%2]
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		_, err := j.c.Cancel(cctx, j.id)
		if api.IsCode(err, api.CodeJobFinished) {
			// An earlier try whose answer was lost in the election (a 503 after its write was stored)
			// cancelled it: the job must end cancelled (its state may lag a moment), nothing else.
			st, gerr := j.c.Get(cctx, j.id)
			if gerr == nil && st.State == api.StateCancelled {
				return nil
			}
			return fmt.Errorf("cancel answered %v; the job is %s, not cancelled", err, st.State)
		}
		var apiErr *api.Error
		if errors.As(err, &apiErr) && apiErr.Status < 500 {
			t.Fatalf("cancel during the election: %v", err)
		}
		return err
	})
}

// check verifies the cancelled import: it ended cancelled, and its result, when it has one, counts
// exactly the tracks that reached the library. (When the worker that ran it died before storing the
// cancellation, the next worker ends the job cancelled without running it: it has no result then.)
func (j *longJob) check(t *testing.T, ctx context.Context) {
	t.Helper()
	var st api.JobState
	streamstest.WaitFor(t, time.Minute, func() error {
		var err error
		if st, err = j.c.Get(ctx, j.id); err == nil && !st.State.Terminal() {
			err = fmt.Errorf("state %s", st.State)
		}
		return err
	})
	var res api.ImportResult
	if st.State != api.StateCancelled || json.Unmarshal(st.Result, &res) != nil {
		t.Fatalf("the cancelled import ended %s with %s", st.State, st.Result)
	}
	if string(st.Result) == "null" || len(st.Result) == 0 {
		t.Logf("the cancelled import was ended by the next worker (attempt %d), without a result", st.Attempt)
		return
	}
	page, err := j.c.Library(ctx, "", 500)
	n := len(page.Tracks)
	for err == nil && page.NextCursor != "" {
		page, err = j.c.Library(ctx, page.NextCursor, 500)
		n += len(page.Tracks)
	}
	if err != nil || n != res.Added || n == 0 || n == 1500 {
		t.Fatalf("the cancelled import added %d tracks by its result and %d by the library (%v)", res.Added, n, err)
	}
}

// run is the workload of the cluster test.
type run struct {
	bases [2]string
	plan  []submittedJob // the jobs to submit, made before the run

	mu       sync.Mutex
	jobs     []submittedJob
	watchers []*watcher
	err      error

	count     atomic.Int64 // jobs submitted so far
	active    atomic.Int64 // SSE clients watching right now
	wg        sync.WaitGroup
	submitted chan struct{} // closed when the submitter is done
	progress  chan struct{} // signalled after each submission
}

func newRun(t *testing.T, bases [2]string) *run {
	r := &run{bases: bases, watchers: make([]*watcher, 0, clusterJobs*watchersPerJob),
		submitted: make(chan struct{}), progress: make(chan struct{}, clusterJobs)}
	for i := range clusterJobs {
		user := fmt.Sprintf("u%02d", i)
		r.plan = append(r.plan, submittedJob{user: user, token: token(t, user),
			playlist: newPlaylist(user, tracksPerPlaylist, dupsPerPlaylist)})
	}
	return r
}

type submittedJob struct {
	token    string
	id, user string
	playlist playlist
}

// watcher is one SSE client of one job.
type watcher struct {
	job        string
	states     []api.JobState
	reconnects int
	notFound   int
	err        error
}

func (r *run) submitAll(ctx context.Context) {
	defer close(r.submitted)
	tick := time.NewTicker(submitEvery)
	defer tick.Stop()
	for i, j := range r.plan {
		id, err := r.submit(ctx, i, j.token, j.playlist)
		if err != nil {
			r.mu.Lock()
			r.err = fmt.Errorf("job %d: %w", i, err)
			r.mu.Unlock()
			return
		}
		j.id = id
		r.mu.Lock()
		r.jobs = append(r.jobs, j)
		for w := range watchersPerJob {
			wt := &watcher{job: id}
			r.watchers = append(r.watchers, wt)
			r.wg.Add(1)
			go r.watch(ctx, wt, j.token, w%2)
		}
		r.mu.Unlock()
		r.count.Add(1)
		r.progress <- struct{}{}
		select {
		case <-tick.C:
		case <-ctx.Done():
		}
	}
}

// submit posts job i with an Idempotency-Key, retrying on the other gateway while one is down or NATS
// is electing leaders, so a retry never makes a second job.
func (r *run) submit(ctx context.Context, i int, tok string, p playlist) (string, error) {
	var last error
	for attempt := 0; ctx.Err() == nil; attempt++ {
		c := api.NewClient(r.bases[(i+attempt)%2], tok)
		sctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		st, _, err := c.Submit(sctx, p.request(fmt.Sprintf("playlist %d", i)), "job-"+strconv.Itoa(i))
		cancel()
		if err == nil {
			return st.ID, nil
		}
		var apiErr *api.Error
		if errors.As(err, &apiErr) && apiErr.Status < 500 && apiErr.Status != http.StatusTooManyRequests {
			return "", err
		}
		last = err
		select {
		case <-time.After(200 * time.Millisecond):
		case <-ctx.Done():
		}
	}
	return "", fmt.Errorf("not submitted before the deadline: %v", last)
}

// watch follows one job over SSE until it sees the terminal state. On every reconnect it moves to the
// other gateway; WatchJob resumes there with Last-Event-ID.
func (r *run) watch(ctx context.Context, w *watcher, tok string, first int) {
	defer r.wg.Done()
	r.active.Add(1)
	defer r.active.Add(-1)
	idx := first
	c := api.NewClient(r.bases[idx], tok)
	rotate := func() { idx = 1 - idx; c.BaseURL = r.bases[idx] }
	for {
		err := c.WatchJob(ctx, w.job, func(st api.JobState) error {
			w.states = append(w.states, st)
			return nil
		}, func(error) { w.reconnects++; rotate() })
		var apiErr *api.Error
		if err != nil && errors.As(err, &apiErr) && apiErr.Status == http.StatusNotFound && ctx.Err() == nil {
			// The job's first event is not on this gateway's replica yet (a follower answered the
			// direct get): ask again, on the other gateway.
			w.notFound++
			rotate()
			time.Sleep(100 * time.Millisecond)
			continue
		}
		w.err = err
		return
	}
}

// waitSubmitted returns once n jobs are submitted (or the submitter gave up, or ctx ended).
func (r *run) waitSubmitted(ctx context.Context, n int64) {
	for r.count.Load() < n {
		select {
		case <-r.progress:
		case <-r.submitted:
			return
		case <-ctx.Done():
			return
		}
	}
}

func (r *run) submitErr() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err == nil && len(r.jobs) != clusterJobs {
		return fmt.Errorf("%d of %d jobs submitted", len(r.jobs), clusterJobs)
	}
	return r.err
}

// check verifies what every SSE client saw: no error, its job's terminal state last, and revisions
// that never go back. A revision seen twice in a row (the same value again) is counted, not failed:
// KNOWN ISSUE (deployments/README.md), a client resuming on a gateway whose JOB_STATE watch is behind
// its Last-Event-ID gets "event: reset" and the same snapshot again.
func (r *run) check(t *testing.T) bool {
	t.Helper()
	reconnected, notFound, repeated, bad := 0, 0, 0, 0
	for _, w := range r.watchers {
		if w.reconnects > 0 {
			reconnected++
		}
		notFound += w.notFound
		var problem string
		switch {
		case w.err != nil:
			problem = w.err.Error()
		case len(w.states) == 0:
			problem = "no state received"
		case !w.states[len(w.states)-1].State.Terminal():
			problem = "last state " + string(w.states[len(w.states)-1].State)
		}
		for i := 1; i < len(w.states) && problem == ""; i++ {
			prev, cur := w.states[i-1], w.states[i]
			switch {
			case cur.Revision < prev.Revision:
				problem = fmt.Sprintf("revision %d after %d", cur.Revision, prev.Revision)
			case cur.Revision == prev.Revision && (cur.State != prev.State || cur.Progress != prev.Progress || cur.Attempt != prev.Attempt):
				problem = fmt.Sprintf("two different states with revision %d", cur.Revision)
			case cur.Revision == prev.Revision:
				repeated++
			}
		}
		if problem != "" {
			bad++
			if bad <= 10 {
				t.Errorf("SSE client of job %s (%d reconnects): %s", w.job, w.reconnects, problem)
			}
		}
	}
	t.Logf("SSE clients: %d, %d of them reconnected (moved to the other gateway), %d not-found retries, "+
		"%d states received twice after a resume (known issue)", len(r.watchers), reconnected, notFound, repeated)
	if bad > 0 {
		t.Errorf("%d of %d SSE clients did not see their job end properly", bad, len(r.watchers))
	}
	if reconnected == 0 {
		t.Errorf("no SSE client reconnected: the gateway restart did not hit any open stream")
	}
	return bad == 0
}

// diagnose logs what is known of the jobs whose clients did not see them end: the last state a client
// saw, the job's events, and the work queue's consumer.
func (r *run) diagnose(t *testing.T, ctx context.Context, admin jetstream.JetStream) {
	t.Helper()
	logged := map[string]bool{}
	for _, w := range r.watchers {
		if logged[w.job] || (w.err == nil && len(w.states) > 0 && w.states[len(w.states)-1].State.Terminal()) {
			continue
		}
		logged[w.job] = true
		last := "none"
		if len(w.states) > 0 {
			st := w.states[len(w.states)-1]
			last = fmt.Sprintf("%s attempt %d progress %d/%d rev %d", st.State, st.Attempt, st.Progress.Done, st.Progress.Total, st.Revision)
		}
		var events []string
		for _, j := range r.jobs {
			if j.id != w.job {
				continue
			}
			h, err := api.NewClient(r.bases[1], j.token).History(ctx, j.id, "", 0)
			if err != nil {
				events = append(events, "history: "+err.Error())
			}
			for _, e := range h.Events {
				events = append(events, string(e))
			}
		}
		t.Logf("job %s: last state seen %s; events:\n  %s", w.job, last, strings.Join(events, "\n  "))
	}
	for _, name := range []string{streams.WorkerConsumer(api.JobTypePlaylistImport)} {
		c, err := admin.Consumer(ctx, streams.StreamJobs, name)
		if err != nil {
			t.Logf("consumer %s: %v", name, err)
			continue
		}
		i := c.CachedInfo()
		t.Logf("consumer %s: pending %d, ack pending %d, redelivered %d, waiting %d, cluster %+v", name,
			i.NumPending, i.NumAckPending, i.NumRedelivered, i.NumWaiting, i.Cluster)
	}
}

// checkJobs checks every job completed with the right result and every user's library is exact. It
// returns how many jobs needed more than one attempt.
func checkJobs(t *testing.T, ctx context.Context, r *run) (redelivered int) {
	t.Helper()
	highest := 0
	defer func() { t.Logf("highest attempt of a job: %d", highest) }()
	for _, j := range r.jobs {
		c := api.NewClient(r.bases[0], j.token)
		st, err := c.Get(ctx, j.id)
		if err != nil {
			t.Errorf("get job %s: %v", j.id, err)
			continue
		}
		if err := checkImportResult(st, j.playlist); err != nil {
			t.Error(err)
		}
		if st.Attempt > 1 {
			redelivered++
		}
		highest = max(highest, st.Attempt)
		if err := checkLibrary(ctx, c, j.playlist.tracks); err != nil {
			t.Errorf("user %s: %v", j.user, err)
		}
	}
	return redelivered
}

// checkReplicas checks that every stream and bucket has the given number of replicas.
func checkReplicas(t *testing.T, js jetstream.JetStream, want int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	names, buckets := streams.Names()
	for _, b := range buckets {
		names = append(names, streams.KVStream(b))
	}
	for _, name := range names {
		s, err := js.Stream(ctx, name)
		if err != nil {
			t.Fatalf("stream %s: %v", name, err)
		}
		if got := s.CachedInfo().Config.Replicas; got != want {
			t.Errorf("stream %s has %d replicas, want %d", name, got, want)
		}
	}
}

// runningJobs reads jobwire_jobs_running (summed over job types) from a worker's /metrics, -1 when it
// cannot.
func runningJobs(base string) int {
	code, body, err := httpGet(base + "/metrics")
	if err != nil || code != http.StatusOK {
		return -1
	}
	total, seen := 0.0, false
	for _, line := range strings.Split(string(body), "\n") {
		if !strings.HasPrefix(line, "jobwire_jobs_running{") {
			continue
		}
		_, v, _ := strings.Cut(line, "} ")
		if n, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
			total, seen = total+n, true
		}
	}
	if !seen {
		return -1
	}
	return int(total)
}

// waitLeaders waits until every stream and bucket has a leader other than the dead node.
func waitLeaders(t *testing.T, js jetstream.JetStream, dead string) {
	t.Helper()
	streamstest.WaitFor(t, 90*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		names, buckets := streams.Names()
		for _, b := range buckets {
			names = append(names, streams.KVStream(b))
		}
		for _, name := range names {
			s, err := js.Stream(ctx, name)
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			if c := s.CachedInfo().Cluster; c == nil || c.Leader == "" || c.Leader == dead {
				return fmt.Errorf("%s: no leader other than %s yet", name, dead)
			}
		}
		return nil
	})
}

// kvStateConsumers is the number of consumers on JOB_STATE's stream (the gateways' watches).
func kvStateConsumers(t *testing.T, js jetstream.JetStream) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var info *jetstream.StreamInfo
	streamstest.WaitFor(t, 20*time.Second, func() error {
		s, err := js.Stream(ctx, streams.KVStream(streams.BucketState))
		if err != nil {
			return fmt.Errorf("KV_JOB_STATE info: %w", err)
		}
		info = s.CachedInfo()
		return nil
	})
	return info.State.Consumers
}

// waitConsumerCaughtUp waits until a durable on JOB_EVENTS has nothing pending or unacknowledged.
func waitConsumerCaughtUp(t *testing.T, js jetstream.JetStream, name string) {
	t.Helper()
	streamstest.WaitFor(t, 60*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, err := js.Consumer(ctx, streams.StreamEvents, name)
		if err != nil {
			return fmt.Errorf("consumer %s: %w", name, err)
		}
		info := c.CachedInfo()
		if info.NumPending != 0 || info.NumAckPending != 0 {
			return fmt.Errorf("consumer %s: %d pending, %d unacknowledged", name, info.NumPending, info.NumAckPending)
		}
		return nil
	})
}

// startCluster starts the three NATS nodes of deployments/nats/cluster on free ports and waits until
// every one is healthy.
func startCluster(t *testing.T) []*natsNode {
	t.Helper()
	dir := copyNATSConfs(t, false)
	ports := freePorts(t, 4222, 4223, 4224, 6222, 6223, 6224, 8222, 8223, 8224)
	var nodes []*natsNode
	for i := 1; i <= 3; i++ {
		nodes = append(nodes, prepareNode(t, dir, fmt.Sprintf("cluster/n%d.conf", i), ports))
	}
	for _, n := range nodes {
		n.start(t, false)
	}
	for _, n := range nodes {
		n.waitHealthy(t, 90*time.Second)
	}
	return nodes
}
