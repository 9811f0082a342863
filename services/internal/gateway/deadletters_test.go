package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/jobwire/jobwire/api"
	"github.com/jobwire/jobwire/services/internal/auth"
	"github.com/jobwire/jobwire/streams"
	"github.com/jobwire/jobwire/streams/streamstest"
)

// operator is a client whose token holds the operator role.
func (b *bundle) operator(t *testing.T, user string) *api.Client {
	return api.NewClient(b.url, b.operatorToken(t, user))
}

// operatorToken is a token of user with the operator role.
func (b *bundle) operatorToken(t *testing.T, user string) string {
	t.Helper()
	tok, err := b.signer.Sign(user, time.Hour, "", "", auth.DefaultOperatorRole)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// deadLetters makes three jobs fail for good (two of alice's, one of bob's) and queues one malformed
// message, and waits until all four are dead letters.
func deadLetters(t *testing.T, b *bundle, ops *api.Client) (alice, bob []api.JobState) {
	t.Helper()
	ac, bc := b.client(t, "alice"), b.client(t, "bob")
	for _, c := range []*api.Client{ac, ac, bc} {
		st := b.submitSteps(t, c, stepsInput{Fail: "upstream said no"})
		if c == ac {
			alice = append(alice, waitState(t, c, st.ID, api.StateFailed))
		} else {
			bob = append(bob, waitState(t, c, st.ID, api.StateFailed))
		}
	}
	if _, err := b.js.Publish(context.Background(), streams.QueueSubject(stepsName), []byte("{not a job")); err != nil {
		t.Fatal(err)
	}
	streamstest.WaitFor(t, 10*time.Second, func() error {
		list, err := ops.DeadLetters(context.Background(), api.DeadLetterFilter{}, "", 0)
		if err == nil && len(list.DeadLetters) != 4 {
			err = fmt.Errorf("%d dead letters", len(list.DeadLetters))
		}
		return err
	})
	return alice, bob
}

// Operators list dead letters, filtered and paged; every field says what died, whose and why.
func TestOperatorsListDeadLetters(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	ops := b.operator(t, "ops")
	alice, bob := deadLetters(t, b, ops)
	list, err := ops.DeadLetters(ctx, api.DeadLetterFilter{}, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	first := list.DeadLetters[0]
	if first.Key != "alice."+alice[0].ID || first.JobID != alice[0].ID || first.Owner != "alice" || first.Type != stepsName ||
		first.Error.Code != "test_failure" || first.Error.Message != "upstream said no" || first.Attempts != 1 || first.Malformed {
		t.Fatalf("first dead letter: %+v", first)
	}
	last := list.DeadLetters[3]
	if !last.Malformed || !strings.HasPrefix(last.Key, "_malformed.") || last.QueueSubject != streams.QueueSubject(stepsName) ||
		last.Error.Code != "invalid_job_message" || last.JobID != "" {
		t.Fatalf("malformed dead letter: %+v", last)
	}
	later, earlier := time.Now().Add(time.Hour), time.Now().Add(-time.Hour)
	for _, tc := range []struct {
		f    api.DeadLetterFilter
		want int
	}{
		{api.DeadLetterFilter{Type: stepsName}, 3},
		{api.DeadLetterFilter{Code: "invalid_job_message"}, 1},
		{api.DeadLetterFilter{Type: stepsName, Code: "nope"}, 0},
		{api.DeadLetterFilter{Since: &later}, 0},
		{api.DeadLetterFilter{Until: &earlier}, 0},
		{api.DeadLetterFilter{Since: &earlier, Until: &later}, 4},
	} {
		got, err := ops.DeadLetters(ctx, tc.f, "", 0)
		if err != nil || len(got.DeadLetters) != tc.want {
			t.Errorf("filter %+v: %v %d dead letters, want %d", tc.f, err, len(got.DeadLetters), tc.want)
		}
	}
	page1, err := ops.DeadLetters(ctx, api.DeadLetterFilter{}, "", 3)
	if err != nil || len(page1.DeadLetters) != 3 || page1.NextCursor == "" {
		t.Fatalf("page 1: %v %+v", err, page1)
	}
	page2, err := ops.DeadLetters(ctx, api.DeadLetterFilter{}, page1.NextCursor, 3)
	if err != nil || len(page2.DeadLetters) != 1 || page2.NextCursor != "" || page2.DeadLetters[0].Key != last.Key {
		t.Fatalf("page 2: %v %+v", err, page2)
	}
	if bob[0].ID != list.DeadLetters[2].JobID {
		t.Fatalf("bob's job is not the third dead letter: %+v", list.DeadLetters[2])
	}
}

// Operators retry and purge dead letters by key or filter; each answer says what became of each, and
// each action is recorded in JOBS_AUDIT with the operator's owner token.
func TestOperatorsRetryAndPurgeDeadLetters(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	ops := b.operator(t, "ops@example.com")
	alice, bob := deadLetters(t, b, ops)
	malformed, _ := ops.DeadLetters(ctx, api.DeadLetterFilter{Code: "invalid_job_message"}, "", 0)
	missing := "alice." + streams.NewJobID(time.Now())
	res, err := ops.RetryDeadLetters(ctx, api.DeadLetterSelection{Keys: []string{"alice." + alice[0].ID, malformed.DeadLetters[0].Key, missing}})
	if err != nil || len(res) != 3 {
		t.Fatalf("retry: %v %+v", err, res)
	}
	if res[0].Status != http.StatusOK || res[0].Job == nil || res[0].Job.State != api.StateQueued ||
		res[1].Status != http.StatusConflict || res[1].Error.Code != api.CodeNotRetryable ||
		res[2].Status != http.StatusNotFound || res[2].Error.Code != api.CodeNoDeadLetter {
		t.Fatalf("retry results: %+v %+v %+v", res[0], res[1], res[2])
	}
	res, err = ops.PurgeDeadLetters(ctx, api.DeadLetterSelection{Keys: []string{"bob." + bob[0].ID}})
	if err != nil || len(res) != 1 || res[0].Status != http.StatusOK {
		t.Fatalf("purge by key: %v %+v", err, res)
	}
	if _, err := b.client(t, "bob").Retry(ctx, bob[0].ID); !api.IsCode(err, api.CodeJobFinished) {
		t.Fatalf("bob retries his purged job: %v, want job_finished", err)
	}
	res, err = ops.PurgeDeadLetters(ctx, api.DeadLetterSelection{Filter: &api.DeadLetterFilter{Code: "invalid_job_message"}})
	if err != nil || len(res) != 1 || res[0].Key != malformed.DeadLetters[0].Key || res[0].Status != http.StatusOK {
		t.Fatalf("purge by filter: %v %+v", err, res)
	}
	if st := waitState(t, b.client(t, "alice"), alice[0].ID, api.StateFailed); st.Attempt != 1 || st.Error.Code != "test_failure" {
		t.Fatalf("the retried job ran again: %+v", st)
	}

	records := auditRecords(t, b, 3)
	operator, _ := streams.OwnerToken("ops@example.com")
	want := []struct {
		action   string
		statuses []int
	}{
		{streams.AuditRetryDeadLetters, []int{200, 409, 404}},
		{streams.AuditPurgeDeadLetters, []int{200}},
		{streams.AuditPurgeDeadLetters, []int{200}},
	}
	for i, rec := range records {
		var statuses []int
		for _, r := range rec.Results {
			statuses = append(statuses, r.Status)
		}
		if rec.Action != want[i].action || rec.Operator != operator || fmt.Sprint(statuses) != fmt.Sprint(want[i].statuses) || len(rec.Selection) == 0 {
			t.Errorf("audit record %d: %+v, want %s %v by %s", i, rec, want[i].action, want[i].statuses, operator)
		}
	}
}

// auditRecords reads the first n records of JOBS_AUDIT.
func auditRecords(t *testing.T, b *bundle, n int) []streams.AuditRecord {
	t.Helper()
	stream, err := b.js.Stream(context.Background(), streams.StreamAudit)
	if err != nil {
		t.Fatal(err)
	}
	var out []streams.AuditRecord
	for seq := uint64(1); seq <= uint64(n); seq++ {
		msg, err := stream.GetMsg(context.Background(), seq)
		if err != nil {
			t.Fatalf("audit record %d: %v", seq, err)
		}
		var rec streams.AuditRecord
		if err := json.Unmarshal(msg.Data, &rec); err != nil {
			t.Fatal(err)
		}
		out = append(out, rec)
	}
	if _, err := stream.GetMsg(context.Background(), uint64(n+1)); err == nil || !strings.Contains(err.Error(), "not found") && err != jetstream.ErrMsgNotFound {
		t.Fatalf("more than %d audit records: %v", n, err)
	}
	return out
}

// The dead-letter routes are operators': a plain user's token, or an operator's stream token, is 403;
// a selection must name keys or a filter, not both, with valid keys.
func TestDeadLetterRoutesAreOperatorsOnly(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	alice := b.client(t, "alice")
	if _, err := alice.DeadLetters(ctx, api.DeadLetterFilter{}, "", 0); !api.IsCode(err, api.CodeForbidden) {
		t.Errorf("a user lists dead letters: %v", err)
	}
	if _, err := alice.RetryDeadLetters(ctx, api.DeadLetterSelection{Filter: &api.DeadLetterFilter{}}); !api.IsCode(err, api.CodeForbidden) {
		t.Errorf("a user retries dead letters: %v", err)
	}
	streamTok, _ := b.signer.Sign("ops", time.Hour, auth.ScopeStream, "", auth.DefaultOperatorRole)
	if status, _, _ := request(t, "GET", b.url+"/v1/dead-letters", streamTok, "", ""); status != http.StatusForbidden {
		t.Errorf("an operator's stream token lists dead letters: %d", status)
	}
	ops := b.operator(t, "ops")
	tooMany := make([]string, api.MaxDeadLetterSelection+1)
	for i := range tooMany {
		tooMany[i] = "alice." + streams.NewJobID(time.Now())
	}
	for _, sel := range []api.DeadLetterSelection{
		{},
		{Keys: []string{"alice." + streams.NewJobID(time.Now())}, Filter: &api.DeadLetterFilter{}},
		{Keys: []string{"../../etc"}},
		{Keys: []string{"_malformed.0"}},
		{Keys: tooMany},
	} {
		if _, err := ops.PurgeDeadLetters(ctx, sel); !api.IsCode(err, api.CodeInvalidInput) {
			t.Errorf("selection of %d keys, filter %v: %v, want invalid_input", len(sel.Keys), sel.Filter != nil, err)
		}
	}
	tok, _ := b.signer.Sign("ops", time.Hour, "", "", auth.DefaultOperatorRole)
	for _, q := range []string{"?since=yesterday", "?cursor=x", "?limit=0", "?limit=1001"} {
		if status, _, body := request(t, "GET", b.url+"/v1/dead-letters"+q, tok, "", ""); status != http.StatusBadRequest {
			t.Errorf("GET /v1/dead-letters%s: %d %s", q, status, body)
		}
	}
}
