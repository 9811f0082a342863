package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jobwire/jobwire/api"
	"github.com/jobwire/jobwire/services/internal/stacktest"
	"github.com/jobwire/jobwire/streams"
	"github.com/jobwire/jobwire/streams/streamstest"
	"github.com/jobwire/jobwire/worker"
)

type greetInput struct {
	Who   string `json:"who" jsonschema:"minLength=1,maxLength=20"`
	Times int    `json:"times,omitempty" jsonschema:"minimum=1,maximum=3"`
}

// greetType returns a job type "test.greet" whose input schema allows up to maxTimes greetings.
func greetType(maxTimes int) worker.Type[greetInput, string] {
	schema := fmt.Sprintf(`{"type":"object","properties":{"who":{"type":"string","minLength":1,"maxLength":20},
		"times":{"type":"integer","minimum":1,"maximum":%d}},"required":["who"],"additionalProperties":false}`, maxTimes)
	return worker.Type[greetInput, string]{Name: "test.greet", Description: fmt.Sprintf("greets up to %d times", maxTimes),
		Schema: json.RawMessage(schema), NameField: "who",
		Handle: func(_ context.Context, job *worker.Job[greetInput], _ worker.Progress) (string, error) {
			return strings.Repeat("hello "+job.Input.Who+" ", max(job.Input.Times, 1)), nil
		}}
}

func startGreeter(t *testing.T, b *bundle, maxTimes int) *worker.Worker {
	t.Helper()
	return stacktest.StartWorker(t, b.nc, worker.Config{Logger: testLogger(), ShutdownGrace: time.Second}, func(w *worker.Worker) error {
		return w.Register(greetType(maxTimes))
	})
}

// jobType returns the listing of one type.
func jobType(t *testing.T, c *api.Client, name string) (api.JobType, bool) {
	t.Helper()
	list, err := c.JobTypes(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, jt := range list.JobTypes {
		if jt.Name == name {
			return jt, true
		}
	}
	return api.JobType{}, false
}

func waitWorkers(t *testing.T, c *api.Client, name string, n int) api.JobType {
	t.Helper()
	var jt api.JobType
	streamstest.WaitFor(t, 10*time.Second, func() error {
		var ok bool
		if jt, ok = jobType(t, c, name); !ok || len(jt.Workers) != n || jt.Online != (n > 0) {
			return fmt.Errorf("%s: %d workers, online %v", name, len(jt.Workers), jt.Online)
		}
		return nil
	})
	return jt
}

func TestSubmitsAreCheckedAgainstTheRegistry(t *testing.T) {
	b := setup(t)
	c := b.client(t, "alice")
	submit := func(typ, input string) (api.JobState, error) {
		st, _, err := c.Submit(context.Background(), api.SubmitRequest{Type: typ, Input: json.RawMessage(input)}, "")
		return st, err
	}
	if _, err := submit("test.greet", `{"who":"ann"}`); !api.IsCode(err, api.CodeUnknownJobType) {
		t.Fatalf("a type nobody registered: %v", err)
	}
	w := startGreeter(t, b, 3)
	jt := waitWorkers(t, c, "test.greet", 1)
	if jt.Description != "greets up to 3 times" || jt.Workers[0].ID != w.ID() || jt.Options.MaxAttempts != worker.DefaultMaxAttempts || !strings.Contains(string(jt.Schema), `"maximum":3`) {
		t.Fatalf("listing %+v", jt)
	}
	for input, want := range map[string]string{
		`{"who":""}`:              "input at /who: minLength",
		`{"who":"ann","times":9}`: "input at /times: maximum",
		`{"who":"ann","x":1}`:     "input: additional properties 'x' not allowed",
		`{"times":1}`:             "input: missing property 'who'",
		`[1]`:                     "input: got array, want object",
	} {
		_, err := submit("test.greet", input)
		if !api.IsCode(err, api.CodeInvalidInput) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want invalid_input with %q", input, err, want)
		}
	}
	st, err := submit("test.greet", `{"who":"ann","times":2}`)
	if err != nil || st.Name != "ann" {
		t.Fatalf("a valid submit: %v %+v", err, st)
	}
	if got := waitState(t, c, st.ID, api.StateCompleted); string(got.Result) != `"hello ann hello ann "` {
		t.Fatalf("result %s", got.Result)
	}
	// Gone from the registry's view at once when its worker stops; its jobs are still accepted and wait.
	if err := w.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitWorkers(t, c, "test.greet", 0)
	queued, err := submit("test.greet", `{"who":"bo"}`)
	if err != nil {
		t.Fatalf("submit while no worker is online: %v", err)
	}
	startGreeter(t, b, 3)
	if got := waitState(t, c, queued.ID, api.StateCompleted); got.Attempt != 1 {
		t.Fatalf("%+v", got)
	}
}

// A rolling deploy that changes a type's schema: while both versions run, an input must suit both (any
// worker may take the job); once the old workers are gone, the new schema alone decides.
func TestRollingDeployChangesTheSchema(t *testing.T) {
	b := setup(t)
	c := b.client(t, "alice")
	old := startGreeter(t, b, 1)
	startGreeter(t, b, 3)
	jt := waitWorkers(t, c, "test.greet", 2)
	if jt.Workers[0].SchemaHash == jt.Workers[1].SchemaHash {
		t.Fatal("the two versions have one schema hash")
	}
	in := api.SubmitRequest{Type: "test.greet", Input: json.RawMessage(`{"who":"ann","times":2}`)}
	if _, _, err := c.Submit(context.Background(), in, ""); !api.IsCode(err, api.CodeInvalidInput) {
		t.Fatalf("times=2 while a worker that allows only 1 is online: %v", err)
	}
	if _, _, err := c.Submit(context.Background(), api.SubmitRequest{Type: "test.greet", Input: json.RawMessage(`{"who":"ann"}`)}, ""); err != nil {
		t.Fatalf("an input both versions take: %v", err)
	}
	if err := old.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitWorkers(t, c, "test.greet", 1)
	st, _, err := c.Submit(context.Background(), in, "")
	if err != nil {
		t.Fatalf("times=2 once only the new version runs: %v", err)
	}
	waitState(t, c, st.ID, api.StateCompleted)
}

// Entries that jobwire's SDK would never write, put straight into JOB_TYPES, are ignored: the gateway
// keeps serving the types it knows.
func TestHostileRegistryEntriesAreIgnored(t *testing.T) {
	b := setup(t)
	c := b.client(t, "alice")
	kv, err := b.js.KeyValue(context.Background(), streams.BucketJobTypes)
	if err != nil {
		t.Fatal(err)
	}
	badSchema := `{"type":"no-such-type"}`
	good := streams.TypeEntry{V: 1, Name: "evil.type", Schema: json.RawMessage(badSchema), SchemaHash: streams.SchemaHash([]byte(badSchema))}
	goodJSON, _ := json.Marshal(good)
	entries := map[string]string{
		"type.evil.type":  string(goodJSON),                                                     // a schema that does not compile
		"type.noop":       `{"v":1,"name":"noop","schema":{"type":"string"},"schemaHash":"00"}`, // hash mismatch
		"type.other.name": `{"v":1,"name":"noop"}`,                                              // names another type
		"type.future":     `{"v":99,"name":"future"}`,                                           // a newer version
		"worker.noop.x":   `{}`,                                                                 // not a worker id
		"worker.noop." + streams.NewWorkerID(time.Now()): `not json`,
		"nonsense":  `{}`,
		"type.huge": `{"v":1,"name":"huge","schema":"` + strings.Repeat("x", streams.MaxSchemaBytes+1) + `"}`,
	}
	for k, v := range entries {
		if _, err := kv.PutString(context.Background(), k, v); err != nil {
			t.Fatalf("put %s: %v", k, err)
		}
	}
	// A valid entry written after them shows the watch went past them all.
	startGreeter(t, b, 3)
	waitWorkers(t, c, "test.greet", 1)
	for _, name := range []string{"evil.type", "other.name", "future", "huge"} {
		if _, ok := jobType(t, c, name); ok {
			t.Errorf("%s is listed", name)
		}
	}
	if _, _, err := c.Submit(context.Background(), api.SubmitRequest{Type: "evil.type", Input: json.RawMessage(`{}`)}, ""); !api.IsCode(err, api.CodeUnknownJobType) {
		t.Errorf("submit of a hostile type: %v", err)
	}
	if noop, _ := jobType(t, c, "noop"); noop.SchemaHash == "00" || !noop.Online {
		t.Errorf("noop's registration was replaced: %+v", noop)
	}
	st, _, err := c.Submit(context.Background(), api.SubmitRequest{Type: "noop", Input: json.RawMessage(`{"any":"thing"}`)}, "")
	if err != nil {
		t.Fatal(err)
	}
	waitState(t, c, st.ID, api.StateCompleted)
}
