package gateway_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jobwire/jobwire/api"
	"github.com/jobwire/jobwire/services/internal/auth"
	"github.com/jobwire/jobwire/services/internal/gateway"
	"github.com/jobwire/jobwire/services/internal/importer"
	"github.com/jobwire/jobwire/services/internal/jobtypes"
	"github.com/jobwire/jobwire/services/internal/projector"
	"github.com/jobwire/jobwire/services/internal/sse"
	"github.com/jobwire/jobwire/services/internal/stacktest"
	"github.com/jobwire/jobwire/streams"
	"github.com/jobwire/jobwire/streams/streamstest"
	"github.com/jobwire/jobwire/worker"
	"github.com/jobwire/jobwire/worker/workertest"
)

const testSecret = "test-secret-test-secret-test-secret-0123456789"

// stepsName is a job type of the tests: it reports Steps progress steps, Delay apart, and then
// completes, or waits for its context when Block is set.
const stepsName = "test.steps"

type stepsInput struct {
	Steps int           `json:"steps" jsonschema:"minimum=0"`
	Delay time.Duration `json:"delay,omitempty"`
	Block bool          `json:"block,omitempty"`
	// Fail, when set, fails the job at once, permanently, with this message.
	Fail string `json:"fail,omitempty"`
}

// stepsType is a job type of the tests, on the public worker SDK like any other.
var stepsType = worker.Type[stepsInput, json.RawMessage]{
	Name: stepsName,
	Handle: func(ctx context.Context, job *worker.Job[stepsInput], progress worker.Progress) (json.RawMessage, error) {
		in := job.Input
		if in.Fail != "" {
			return nil, worker.Permanent("test_failure", errors.New(in.Fail))
		}
		for i := 1; i <= in.Steps; i++ {
			select {
			case <-ctx.Done():
				return json.RawMessage(fmt.Sprintf(`{"steps":%d}`, i-1)), ctx.Err()
			case <-time.After(in.Delay):
			}
			progress.Report(i, in.Steps, "")
		}
		if in.Block {
			<-ctx.Done()
			return json.RawMessage(`{}`), ctx.Err()
		}
		return json.RawMessage(fmt.Sprintf(`{"steps":%d}`, in.Steps)), nil
	},
}

// bundle is what a gateway test works with: a real NATS server, projector, worker and gateway.
type bundle struct {
	srv    *streamstest.Server
	nc     *nats.Conn
	js     jetstream.JetStream
	gw     *gateway.Gateway
	url    string
	signer *auth.Signer
}

type setupOptions struct {
	gw        gateway.Config
	retention time.Duration
	deps      []func(*gateway.Deps)
}

type setupOption func(*setupOptions)

func withGateway(f func(*gateway.Config)) setupOption {
	return func(o *setupOptions) { f(&o.gw) }
}

// withDeps changes the gateway's collaborators (verifier, signer, logger...) before it is built.
func withDeps(f func(*gateway.Deps)) setupOption {
	return func(o *setupOptions) { o.deps = append(o.deps, f) }
}

func withRetention(d time.Duration) setupOption {
	return func(o *setupOptions) { o.retention = d }
}

// newSetupOptions are the tests' gateway configuration (a loopback port, quick heartbeats) with opts.
func newSetupOptions(opts []setupOption) setupOptions {
	o := setupOptions{gw: gateway.Config{Addr: "127.0.0.1:0",
		SSE: sse.Config{Heartbeat: 200 * time.Millisecond, WriteTimeout: time.Second}}}
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

func testLogger() *slog.Logger { return workertest.Logger() }

func setup(t testing.TB, opts ...setupOption) *bundle {
	t.Helper()
	srv := streamstest.RunServer(t)
	nc, js := srv.Ensure(t)
	log := testLogger()
	ctx := context.Background()

	o := newSetupOptions(opts)
	o.gw.StateRetention = o.retention
	proj := projector.New(projector.Config{StateRetention: o.retention}, js, nil, log)
	if err := proj.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(proj.Stop)
	kv, err := js.KeyValue(ctx, streams.BucketLibrary)
	if err != nil {
		t.Fatal(err)
	}
	im := &importer.Importer{Library: importer.NewLibrary(kv)}
	wcfg := worker.Config{Logger: log, ShutdownGrace: time.Second,
		Defaults: worker.TypeOptions{Concurrency: 8, ProgressInterval: 10 * time.Millisecond}}
	stacktest.StartWorker(t, nc, wcfg, func(w *worker.Worker) error {
		if err := jobtypes.Register(w, im, true); err != nil {
			return err
		}
		return w.Register(stepsType)
	})
	gw := startGateway(t, nc, js, o)
	return &bundle{srv: srv, nc: nc, js: js, gw: gw, url: "http://" + gw.Addr(), signer: auth.NewSigner([]byte(testSecret), "")}
}

// startGateway starts a gateway on nc as setup's options say; it stops when the test ends.
func startGateway(t testing.TB, nc *nats.Conn, js jetstream.JetStream, o setupOptions) *gateway.Gateway {
	t.Helper()
	ctx := context.Background()
	kv, err := js.KeyValue(ctx, streams.BucketLibrary)
	if err != nil {
		t.Fatal(err)
	}
	verifier, err := auth.NewVerifier([]byte(testSecret))
	if err != nil {
		t.Fatal(err)
	}
	deps := gateway.Deps{NC: nc, JS: js, Verifier: verifier, Signer: auth.NewSigner([]byte(testSecret), ""),
		Library: importer.NewLibrary(kv), Logger: testLogger()}
	for _, f := range o.deps {
		f(&deps)
	}
	gw := gateway.New(o.gw, deps)
	if err := gw.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(gw.Stop)
	return gw
}

// anotherGateway starts a second gateway on the bundle's NATS server, with a connection of its own.
func (b *bundle) anotherGateway(t *testing.T, opts ...setupOption) (*gateway.Gateway, *nats.Conn) {
	t.Helper()
	o := newSetupOptions(opts)
	nc, js := b.srv.Connect(t)
	return startGateway(t, nc, js, o), nc
}

func (b *bundle) token(t *testing.T, user string) string {
	t.Helper()
	tok, err := b.signer.Sign(user, time.Hour, "", "")
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func (b *bundle) client(t *testing.T, user string) *api.Client {
	return api.NewClient(b.url, b.token(t, user))
}

// submitSteps submits a test.steps job for user.
func (b *bundle) submitSteps(t *testing.T, c *api.Client, in stepsInput) api.JobState {
	t.Helper()
	raw, _ := json.Marshal(in)
	st, _, err := c.Submit(context.Background(), api.SubmitRequest{Type: stepsName, Input: raw}, "")
	if err != nil {
		t.Fatalf("submit: %v", err)
	}
	return st
}

// waitState waits until the job reaches state.
func waitState(t *testing.T, c *api.Client, id string, want api.State) api.JobState {
	t.Helper()
	var st api.JobState
	streamstest.WaitFor(t, 10*time.Second, func() error {
		var err error
		st, err = c.Get(context.Background(), id)
		if err != nil {
			return err
		}
		if st.State != want {
			return fmt.Errorf("state %s, want %s", st.State, want)
		}
		return nil
	})
	return st
}

// request sends a raw HTTP request and returns status and body.
func request(t *testing.T, method, url, token, contentType, body string, hdr ...string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, data
}

// errorCode extracts the code of a JSON error body.
func errorCode(body []byte) api.Code {
	var eb api.ErrorBody
	if json.Unmarshal(body, &eb) != nil || eb.Error == nil {
		return ""
	}
	return eb.Error.Code
}
