package main

import (
	"encoding/json"
	"testing"

	"github.com/jobwire/jobwire/api"
	"github.com/jobwire/jobwire/worker"
	"github.com/jobwire/jobwire/worker/workertest"
)

func TestCount(t *testing.T) {
	env := workertest.New(t)
	env.Start(t, worker.Config{}, Count)

	st := env.Await(t, env.Submit(t, "demo.count", Input{N: 5}))
	if st.State != api.StateCompleted || string(st.Result) != `{"count":5}` || st.Progress.Percent != 100 {
		t.Fatalf("count to 5: %+v", st)
	}
	st = env.Await(t, env.Submit(t, "demo.count", Input{N: 1, FailAttempts: 2}))
	if st.State != api.StateCompleted || st.Attempt != 3 {
		t.Fatalf("two failed attempts first: %+v", st)
	}
	st = env.Await(t, env.Submit(t, "demo.count", Input{N: 1, Permanent: true}))
	if st.State != api.StateFailed || st.Error.Code != "demo_permanent" || st.Attempt != 1 {
		t.Fatalf("permanent: %+v", st)
	}
	st = env.Await(t, env.Submit(t, "demo.count", json.RawMessage(`{"n":0}`)))
	if st.State != api.StateFailed || st.Error.Code != worker.CodeInvalidInput {
		t.Fatalf("n=0: %+v", st)
	}
}

func TestCountHonoursCancel(t *testing.T) {
	env := workertest.New(t)
	env.Start(t, worker.Config{}, Count)
	id := env.Submit(t, "demo.count", Input{N: 1000, DelayMs: 20})
	env.AwaitState(t, id, func(st api.JobState) bool { return st.Progress.Done >= 2 })
	env.Cancel(t, id)
	st := env.Await(t, id)
	var res Result
	if st.State != api.StateCancelled || json.Unmarshal(st.Result, &res) != nil || res.Count < 2 || res.Count >= 1000 {
		t.Fatalf("%+v", st)
	}
}
