package gateway_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jobwire/jobwire/api"
	"github.com/jobwire/jobwire/services/internal/gateway"
)

// uniqueJob is a test.steps submit with uniqueKey key, held queued until an hour from now.
func uniqueJob(key, window string) api.SubmitRequest {
	later := time.Now().Add(time.Hour)
	return api.SubmitRequest{Type: stepsName, Input: json.RawMessage(`{"steps":1}`), RunAt: &later, UniqueKey: key, UniqueFor: window}
}

// While a job made with a uniqueKey is unfinished, a submit with the same key (same user, same type)
// answers 200 with it; another user, another key, a finished job or a closed window make a new job.
func TestUniqueKeyReturnsTheUnfinishedJob(t *testing.T) {
	b := setup(t, withGateway(func(c *gateway.Config) { c.SubmitBurst = 100 }))
	ctx := context.Background()
	alice, bob := b.client(t, "alice"), b.client(t, "bob")
	submit := func(c *api.Client, req api.SubmitRequest) (api.JobState, bool) {
		t.Helper()
		st, created, err := c.Submit(ctx, req, "")
		if err != nil {
			t.Fatalf("submit %s: %v", req.UniqueKey, err)
		}
		return st, created
	}
	first, created := submit(alice, uniqueJob("report-7", ""))
	if !created {
		t.Fatal("the first submit did not create a job")
	}
	if again, created := submit(alice, uniqueJob("report-7", "")); created || again.ID != first.ID {
		t.Fatalf("same key: created=%v %s, want 200 with %s", created, again.ID, first.ID)
	}
	if other, created := submit(bob, uniqueJob("report-7", "")); !created || other.ID == first.ID {
		t.Fatalf("another user's submit with the key: created=%v %s", created, other.ID)
	}
	if other, created := submit(alice, uniqueJob("report-8", "")); !created || other.ID == first.ID {
		t.Fatalf("another key: created=%v %s", created, other.ID)
	}
	if _, err := alice.Cancel(ctx, first.ID); err != nil {
		t.Fatal(err)
	}
	if next, created := submit(alice, uniqueJob("report-7", "")); !created || next.ID == first.ID {
		t.Fatalf("after the job was cancelled: created=%v %s", created, next.ID)
	}

	short, _ := submit(alice, uniqueJob("short", "1s"))
	time.Sleep(1100 * time.Millisecond)
	if next, created := submit(alice, uniqueJob("short", "1s")); !created || next.ID == short.ID {
		t.Fatalf("after the window closed: created=%v %s", created, next.ID)
	}
}

// Of concurrent submits with one uniqueKey, singly or in a batch, exactly one makes the job.
func TestConcurrentUniqueSubmitsMakeOneJob(t *testing.T) {
	b := setup(t, withGateway(func(c *gateway.Config) { c.SubmitBurst = 100 }))
	ctx := context.Background()
	alice := b.client(t, "alice")
	var mu sync.Mutex
	ids, created := map[string]bool{}, 0
	var wg sync.WaitGroup
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, c, err := alice.Submit(ctx, uniqueJob("once", ""), "")
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				t.Error(err)
				return
			}
			ids[st.ID] = true
			if c {
				created++
			}
		}()
	}
	wg.Wait()
	if len(ids) != 1 || created != 1 {
		t.Fatalf("%d jobs, %d answered created, want 1 and 1", len(ids), created)
	}
	item := api.BatchItem{SubmitRequest: uniqueJob("in-a-batch", "")}
	results, err := alice.SubmitBatch(ctx, []api.BatchItem{item, item})
	if err != nil {
		t.Fatal(err)
	}
	if results[0].Job == nil || results[1].Job == nil || results[0].Job.ID != results[1].Job.ID || results[0].Status+results[1].Status != 402 {
		t.Fatalf("a batch with one key twice: %+v %+v, want one job, answered 202 and 200", results[0], results[1])
	}
}

func TestUniqueKeyOptionsAreChecked(t *testing.T) {
	b := setup(t)
	alice := b.client(t, "alice")
	for _, req := range []api.SubmitRequest{
		{Type: stepsName, Input: json.RawMessage(`{}`), UniqueFor: "1m"},
		uniqueJob("k", "0s"),
		uniqueJob("k", "25h"),
		uniqueJob("k", "soon"),
		uniqueJob(strings.Repeat("k", api.MaxUniqueKey+1), ""),
	} {
		if _, _, err := alice.Submit(context.Background(), req, ""); !api.IsCode(err, api.CodeInvalidInput) {
			t.Errorf("uniqueKey %.8q uniqueFor %q: %v, want invalid_input", req.UniqueKey, req.UniqueFor, err)
		}
	}
}
