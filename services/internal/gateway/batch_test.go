package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jobwire/jobwire/api"
	"github.com/jobwire/jobwire/services/internal/gateway"
	"github.com/jobwire/jobwire/streams/streamstest"
)

// stepsItem is a batch item of a test.steps job.
func stepsItem(steps int, key string) api.BatchItem {
	raw, _ := json.Marshal(stepsInput{Steps: steps})
	return api.BatchItem{SubmitRequest: api.SubmitRequest{Type: stepsName, Input: raw}, IdempotencyKey: key}
}

func TestBatchAnswersEveryItemInOrder(t *testing.T) {
	b := setup(t)
	alice := b.client(t, "alice")
	items := []api.BatchItem{
		stepsItem(1, ""),
		{SubmitRequest: api.SubmitRequest{Type: "mine.bitcoin", Input: json.RawMessage(`{}`)}},
		stepsItem(2, ""),
		{SubmitRequest: api.SubmitRequest{Type: stepsName, Input: json.RawMessage(`{"steps":-1}`)}},
		{SubmitRequest: api.SubmitRequest{Type: stepsName, Input: json.RawMessage(`{}`), Timeout: "1ms"}},
		stepsItem(1, strings.Repeat("k", 256)),
		{SubmitRequest: api.SubmitRequest{Type: stepsName, Input: json.RawMessage(`{}`), MaxAttempts: 99}},
		stepsItem(3, "key-1"),
	}
	want := []struct {
		status int
		code   api.Code
	}{{202, ""}, {422, api.CodeUnknownJobType}, {202, ""}, {422, api.CodeInvalidInput}, {422, api.CodeInvalidInput},
		{422, api.CodeInvalidInput}, {422, api.CodeInvalidInput}, {202, ""}}
	results, err := alice.SubmitBatch(context.Background(), items)
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != len(items) {
		t.Fatalf("%d results for %d items", len(results), len(items))
	}
	for i, r := range results {
		switch {
		case r.Status != want[i].status:
			t.Errorf("item %d: status %d (%+v), want %d", i, r.Status, r.Error, want[i].status)
		case want[i].code != "" && (r.Error == nil || r.Error.Code != want[i].code || r.Job != nil):
			t.Errorf("item %d: %+v, want only error %s", i, r, want[i].code)
		case want[i].code == "" && (r.Job == nil || r.Error != nil || r.Job.State != api.StateQueued):
			t.Errorf("item %d: %+v, want a queued job", i, r)
		}
	}
	// The queued items run and are the caller's own: nobody else sees them.
	bob := b.client(t, "bob")
	for _, i := range []int{0, 2, 7} {
		st := waitState(t, alice, results[i].Job.ID, api.StateCompleted)
		if st.Type != stepsName {
			t.Errorf("item %d ran as %q", i, st.Type)
		}
		if _, err := bob.Get(context.Background(), st.ID); !api.IsCode(err, api.CodeJobNotFound) {
			t.Errorf("bob reads alice's job %s: %v", st.ID, err)
		}
	}
}

func TestBatchOverItsLimitsIsRefusedWhole(t *testing.T) {
	b := setup(t, withGateway(func(c *gateway.Config) { c.BodyLimit = 256 << 10; c.SubmitBurst = 20 }))
	tok := b.token(t, "alice")
	batch := func(n int, item string) string {
		return `{"jobs":[` + strings.TrimSuffix(strings.Repeat(item+",", n), ",") + `]}`
	}
	small := `{"type":"test.steps","input":{"steps":0}}`
	cases := []struct {
		name, body string
		hdr        []string
		status     int
		code       api.Code
	}{
		{"more than the maximum", batch(api.MaxBatchJobs+1, `{}`), nil, 422, api.CodeInvalidInput},
		{"over the body limit", batch(10, `{"type":"test.steps","input":{"pad":"`+strings.Repeat("x", 30<<10)+`"}}`), nil, 413, api.CodeBodyTooLarge},
		{"no jobs", `{"jobs":[]}`, nil, 422, api.CodeInvalidInput},
		{"jobs missing", `{}`, nil, 422, api.CodeInvalidInput},
		{"malformed", `{"jobs":[{"type":`, nil, 400, api.CodeBadRequest},
		{"not a list", `{"jobs":{"type":"test.steps"}}`, nil, 422, api.CodeInvalidInput},
		{"unknown item field", `{"jobs":[{"type":"test.steps","input":{},"priority":1}]}`, nil, 422, api.CodeInvalidInput},
		{"an Idempotency-Key header", batch(1, small), []string{"Idempotency-Key", "k"}, 422, api.CodeInvalidInput},
		{"more than the submit burst", batch(21, small), nil, 422, api.CodeInvalidInput},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, _, body := request(t, "POST", b.url+"/v1/jobs/batch", tok, "application/json", tc.body, tc.hdr...)
			if status != tc.status || errorCode(body) != tc.code {
				t.Fatalf("got %d %.300s, want %d %s", status, body, tc.status, tc.code)
			}
		})
	}
	// Each item takes a submit token: 15 pass, the next 10 are refused whole, with Retry-After.
	if status, _, body := request(t, "POST", b.url+"/v1/jobs/batch", tok, "application/json", batch(15, small)); status != 200 {
		t.Fatalf("batch of 15: %d %.300s", status, body)
	}
	status, hdr, body := request(t, "POST", b.url+"/v1/jobs/batch", tok, "application/json", batch(10, small))
	if status != http.StatusTooManyRequests || errorCode(body) != api.CodeRateLimited || hdr.Get("Retry-After") == "" {
		t.Fatalf("batch of 10 after 15: %d %v %.300s, want 429 with Retry-After", status, hdr, body)
	}
	waitJobs(t, b.client(t, "alice"), 15)
}

func TestBatchReplayedWithItsKeysMakesNoNewJobs(t *testing.T) {
	b := setup(t, withGateway(func(c *gateway.Config) { c.SubmitRate = gateway.Rate{N: -1} }))
	alice := b.client(t, "alice")
	const n = 40
	items := make([]api.BatchItem, n)
	for i := range items {
		items[i] = stepsItem(i%3, fmt.Sprintf("import-%d", i))
	}
	// Three clients send the same batch at once (a retried request racing its original).
	var wg sync.WaitGroup
	answers := make([][]api.BatchResult, 3)
	for k := range answers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			if answers[k], err = alice.SubmitBatch(context.Background(), items); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	for i := range n {
		created := 0
		for k := range answers {
			r := answers[k][i]
			if r.Job == nil || r.Job.ID != answers[0][i].Job.ID {
				t.Fatalf("item %d: answer %d is %+v, want job %+v", i, k, r, answers[0][i].Job)
			}
			if r.Status == 202 {
				created++
			}
		}
		if created != 1 {
			t.Errorf("item %d created %d times", i, created)
		}
	}
	// Later, the same keys again: the same jobs (200); a key with another input is refused alone.
	items[5] = stepsItem(7, "import-5")
	again, err := alice.SubmitBatch(context.Background(), items)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range again {
		switch {
		case i == 5 && (r.Status != 422 || r.Error == nil || r.Error.Code != api.CodeInvalidInput):
			t.Errorf("key reused with another input: %+v, want 422", r)
		case i != 5 && (r.Status != 200 || r.Job == nil || r.Job.ID != answers[0][i].Job.ID):
			t.Errorf("item %d replayed: %+v, want 200 with job %s", i, r, answers[0][i].Job.ID)
		}
	}
	waitJobs(t, alice, n)
	// Keys are per user: bob's batch with the same keys makes his own jobs.
	theirs, err := b.client(t, "bob").SubmitBatch(context.Background(), items[:3])
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range theirs {
		if r.Status != 202 || r.Job.ID == answers[0][i].Job.ID {
			t.Errorf("bob's item %d: %+v, want a new job", i, r)
		}
	}
}

// waitJobs waits until the user's job list holds n jobs (it is read from the projection).
func waitJobs(t *testing.T, c *api.Client, n int) {
	t.Helper()
	streamstest.WaitFor(t, 10*time.Second, func() error {
		list, err := c.List(context.Background(), "", "", 500)
		if err == nil && len(list.Jobs) != n {
			err = fmt.Errorf("%d jobs listed, want %d", len(list.Jobs), n)
		}
		return err
	})
}
