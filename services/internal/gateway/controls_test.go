package gateway_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/jobwire/jobwire/api"
	"github.com/jobwire/jobwire/streams"
	"github.com/jobwire/jobwire/streams/streamstest"
)

// listed returns the type as GET /v1/job-types lists it.
func listed(t *testing.T, c *api.Client, name string) api.JobType {
	t.Helper()
	jt, ok := jobType(t, c, name)
	if !ok {
		t.Fatalf("job type %s not listed", name)
	}
	return jt
}

// A paused type's workers take no job while running ones finish and submits still queue; after a
// resume the queued jobs run. Both actions are audited and the state is listed.
func TestPauseAndResumeAJobType(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	ops, alice := b.operator(t, "ops"), b.client(t, "alice")
	running := b.submitSteps(t, alice, stepsInput{Steps: 10, Delay: 100 * time.Millisecond})
	waitState(t, alice, running.ID, api.StateActive)

	jt, err := ops.PauseJobType(ctx, stepsName)
	if err != nil {
		t.Fatal(err)
	}
	if !jt.Paused || jt.PausedBy != "ops" || jt.PausedAt == nil || jt.Name != stepsName {
		t.Fatalf("pause answered %+v", jt)
	}
	if again, err := ops.PauseJobType(ctx, stepsName); err != nil || !again.PausedAt.Equal(*jt.PausedAt) {
		t.Fatalf("pausing twice: %+v, %v (want the first pause kept)", again, err)
	}
	streamstest.WaitFor(t, 5*time.Second, func() error {
		if !listed(t, alice, stepsName).Paused {
			return errors.New("GET /v1/job-types does not list it paused yet")
		}
		return nil
	})
	// The pull that was waiting when the pause came ends within a second; after that nothing is fetched.
	time.Sleep(1500 * time.Millisecond)
	queued := b.submitSteps(t, alice, stepsInput{Steps: 1})
	if st := waitState(t, alice, running.ID, api.StateCompleted); st.Progress.Done != 10 {
		t.Fatalf("running job: %+v", st)
	}
	time.Sleep(time.Second)
	if st, err := alice.Get(ctx, queued.ID); err != nil || st.State != api.StateQueued {
		t.Fatalf("job submitted while paused: %+v, %v (want queued)", st, err)
	}

	jt, err = ops.ResumeJobType(ctx, stepsName)
	if err != nil || jt.Paused || jt.PausedAt != nil {
		t.Fatalf("resume answered %+v, %v", jt, err)
	}
	waitState(t, alice, queued.ID, api.StateCompleted)
	audited := auditActions(t, b.js)
	if len(audited) != 3 || audited[0] != streams.AuditPauseJobType || audited[2] != streams.AuditResumeJobType {
		t.Fatalf("audit: %v", audited)
	}
}

// auditActions returns the actions recorded in JOBS_AUDIT, in order.
func auditActions(t *testing.T, js jetstream.JetStream) []string {
	t.Helper()
	ctx := context.Background()
	cons, err := js.OrderedConsumer(ctx, streams.StreamAudit, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for {
		batch, err := cons.FetchNoWait(100)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for m := range batch.Messages() {
			var rec streams.AuditRecord
			if err := json.Unmarshal(m.Data(), &rec); err != nil {
				t.Fatal(err)
			}
			out = append(out, rec.Action)
			n++
		}
		if n == 0 {
			return out
		}
	}
}

// Only operators pause and resume; a bad or unknown type is answered before anything is written.
func TestPauseIsRefusedToPlainUsersAndUnknownTypes(t *testing.T) {
	b := setup(t)
	ops, alice := b.operator(t, "ops"), b.client(t, "alice")
	for _, tc := range []struct {
		c      *api.Client
		action string
		path   string
		status int
		code   api.Code
	}{
		{alice, "pause", stepsName, http.StatusForbidden, api.CodeForbidden},
		{alice, "resume", stepsName, http.StatusForbidden, api.CodeForbidden},
		{ops, "pause", "no.such_type", http.StatusNotFound, api.CodeNotFound},
		{ops, "pause", "Not-A-Type", http.StatusBadRequest, api.CodeBadRequest},
	} {
		t.Run(fmt.Sprintf("%s %s", tc.action, tc.path), func(t *testing.T) {
			do := tc.c.PauseJobType
			if tc.action == "resume" {
				do = tc.c.ResumeJobType
			}
			_, err := do(context.Background(), tc.path)
			var ae *api.Error
			if !errors.As(err, &ae) || ae.Status != tc.status || ae.Code != tc.code {
				t.Fatalf("got %v, want %d %s", err, tc.status, tc.code)
			}
		})
	}
	if listed(t, alice, stepsName).Paused {
		t.Fatal("a refused pause paused the type")
	}
	if got := auditActions(t, b.js); len(got) != 0 {
		t.Fatalf("refused actions audited: %v", got)
	}
	code, _, _ := request(t, http.MethodPost, b.url+"/v1/job-types/"+stepsName+"/pause", "", "", "")
	if code != http.StatusUnauthorized {
		t.Fatalf("no token: %d", code)
	}
}

// An operator sets, changes and lifts a type's rate limit: the answer and the listing say it, the
// type's ticket stream follows it, and bad limits are refused before anything is written.
func TestOperatorsSetAndLiftARateLimit(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	ops := b.operator(t, "ops")
	tickets := streams.RateStream(stepsName)
	for _, limit := range []api.RateLimit{{Limit: 5, Interval: api.Duration(time.Second)}, {Limit: 100, Interval: api.Duration(time.Minute)}} {
		jt, err := ops.SetRateLimit(ctx, stepsName, limit)
		if err != nil || jt.RateLimit == nil || *jt.RateLimit != limit {
			t.Fatalf("set %+v: %+v, %v", limit, jt.RateLimit, err)
		}
		s, err := b.js.Stream(ctx, tickets)
		if err != nil {
			t.Fatal(err)
		}
		if cfg := s.CachedInfo().Config; cfg.MaxMsgs != int64(limit.Limit) || cfg.MaxAge != time.Duration(limit.Interval) || cfg.Discard != jetstream.DiscardNew {
			t.Fatalf("ticket stream: %+v", cfg)
		}
	}
	streamstest.WaitFor(t, 5*time.Second, func() error {
		if l := listed(t, ops, stepsName).RateLimit; l == nil || l.Limit != 100 {
			return fmt.Errorf("listed limit %+v", l)
		}
		return nil
	})
	for _, body := range []struct {
		json   string
		status int
	}{
		{`{"limit":0,"interval":"1s"}`, http.StatusUnprocessableEntity},
		{`{"limit":100001,"interval":"1s"}`, http.StatusUnprocessableEntity},
		{`{"limit":5,"interval":"500ms"}`, http.StatusUnprocessableEntity},
		{`{"limit":5,"interval":"25h"}`, http.StatusUnprocessableEntity},
		{`{"limit":5,"interval":"soon"}`, http.StatusBadRequest},
		{`{"limit":5,"interval":"1s"`, http.StatusBadRequest},
	} {
		code, _, resp := request(t, http.MethodPut, b.url+"/v1/job-types/"+stepsName+"/rate-limit", b.operatorToken(t, "ops"), "application/json", body.json)
		if code != body.status {
			t.Errorf("%s: %d %s, want %d", body.json, code, resp, body.status)
		}
	}
	if _, err := b.client(t, "alice").SetRateLimit(ctx, stepsName, api.RateLimit{Limit: 1, Interval: api.Duration(time.Second)}); !isStatus(err, http.StatusForbidden) {
		t.Fatalf("a plain user set a rate limit: %v", err)
	}
	jt, err := ops.RemoveRateLimit(ctx, stepsName)
	if err != nil || jt.RateLimit != nil {
		t.Fatalf("remove: %+v, %v", jt, err)
	}
	if _, err := b.js.Stream(ctx, tickets); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Fatalf("ticket stream after the limit was lifted: %v", err)
	}
	if got := auditActions(t, b.js); len(got) != 3 || got[0] != streams.AuditSetRateLimit {
		t.Fatalf("audit: %v", got)
	}
}

func isStatus(err error, status int) bool {
	var ae *api.Error
	return errors.As(err, &ae) && ae.Status == status
}
