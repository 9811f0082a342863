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
	"github.com/jobwire/jobwire/services/internal/testkit"
	"github.com/jobwire/jobwire/streams"
	"github.com/jobwire/jobwire/streams/streamstest"
)

// Operators create, list, read and delete schedules; each create and delete is audited.
func TestSchedulesCreateListGetDelete(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	ops := b.operator(t, "ops@example.com")
	hourly, err := ops.CreateSchedule(ctx, api.ScheduleRequest{ID: "hourly-steps", Type: stepsName, Input: json.RawMessage(`{"steps":2}`),
		Cron: "@hourly", MaxAttempts: 1, Timeout: "90s"})
	if err != nil {
		t.Fatal(err)
	}
	if hourly.ID != "hourly-steps" || hourly.Owner != "ops_40example_2Ecom" || hourly.Cron != "@hourly" || hourly.Timeout != "1m30s" ||
		hourly.MaxAttempts != 1 || string(hourly.Input) != `{"steps":2}` || time.Since(hourly.CreatedAt) > time.Minute {
		t.Fatalf("created %+v", hourly)
	}
	daily, err := ops.CreateSchedule(ctx, api.ScheduleRequest{Type: stepsName, Input: json.RawMessage(`{"steps":1}`),
		Cron: "0 30 2 * * *", Timezone: "Europe/Berlin"})
	if err != nil {
		t.Fatal(err)
	}
	if !streams.ValidJobID(daily.ID) || daily.Timezone != "Europe/Berlin" {
		t.Fatalf("a schedule without an id gets a ULID: %+v", daily)
	}
	if _, err := ops.CreateSchedule(ctx, api.ScheduleRequest{ID: "hourly-steps", Type: stepsName, Input: json.RawMessage(`{"steps":3}`), Every: "1h"}); !api.IsCode(err, api.CodeScheduleExists) {
		t.Fatalf("a second schedule with the same id: %v", err)
	}
	list, err := ops.Schedules(ctx)
	if err != nil || len(list.Schedules) != 2 || list.Schedules[0].ID != daily.ID || list.Schedules[1].ID != "hourly-steps" {
		t.Fatalf("list: %v %+v", err, list)
	}
	got, err := ops.Schedule(ctx, "hourly-steps")
	if err != nil || got.ID != hourly.ID || !got.CreatedAt.Equal(hourly.CreatedAt) || string(got.Input) != string(hourly.Input) {
		t.Fatalf("get: %v %+v", err, got)
	}
	if err := ops.DeleteSchedule(ctx, "hourly-steps"); err != nil {
		t.Fatal(err)
	}
	for _, err := range []error{ops.DeleteSchedule(ctx, "hourly-steps"), func() error { _, err := ops.Schedule(ctx, "hourly-steps"); return err }()} {
		if !api.IsCode(err, api.CodeScheduleNotFound) {
			t.Fatalf("after the delete: %v, want schedule_not_found", err)
		}
	}
	if list, err := ops.Schedules(ctx); err != nil || len(list.Schedules) != 1 {
		t.Fatalf("list after the delete: %v %+v", err, list)
	}
	// The same id is free again.
	if _, err := ops.CreateSchedule(ctx, api.ScheduleRequest{ID: "hourly-steps", Type: stepsName, Input: json.RawMessage(`{"steps":3}`), Every: "1h"}); err != nil {
		t.Fatal(err)
	}
	audit, err := b.js.Stream(ctx, streams.StreamAudit)
	if err != nil {
		t.Fatal(err)
	}
	info, err := audit.Info(ctx, jetstream.WithSubjectFilter("jobs.audit.schedules.>"))
	if err != nil || info.State.Subjects[streams.AuditSubject(streams.AuditCreateSchedule)] != 3 || info.State.Subjects[streams.AuditSubject(streams.AuditDeleteSchedule)] != 1 {
		t.Fatalf("audit records: %v %+v", err, info.State.Subjects)
	}
}

// Every refused schedule, one row per hostile or malformed request, and routes for operators only.
func TestSchedulesRefused(t *testing.T) {
	b := setup(t)
	tok, err := b.signer.Sign("ops", time.Hour, "", "", auth.DefaultOperatorRole)
	if err != nil {
		t.Fatal(err)
	}
	const good = `"type":"test.steps","input":{"steps":1}`
	for _, tc := range []struct {
		name, body string
		status     int
		code       api.Code
	}{
		{"malformed JSON", `{"type":`, 400, api.CodeBadRequest},
		{"not an object", `[]`, 400, api.CodeBadRequest},
		{"unknown field", `{` + good + `,"every":"1m","priority":3}`, 422, api.CodeInvalidInput},
		{"unknown type", `{"type":"no.such","input":{},"every":"1m"}`, 422, api.CodeUnknownJobType},
		{"input against the schema", `{"type":"test.steps","input":{"steps":-1},"every":"1m"}`, 422, api.CodeInvalidInput},
		{"input not an object", `{"type":"test.steps","input":"x","every":"1m"}`, 422, api.CodeInvalidInput},
		{"both cron and every", `{` + good + `,"every":"1m","cron":"@daily"}`, 422, api.CodeInvalidInput},
		{"neither cron nor every", `{` + good + `}`, 422, api.CodeInvalidInput},
		{"five-field cron", `{` + good + `,"cron":"*/5 * * * *"}`, 422, api.CodeInvalidInput},
		{"cron out of range", `{` + good + `,"cron":"0 61 * * * *"}`, 422, api.CodeInvalidInput},
		{"cron naming no day", `{` + good + `,"cron":"0 0 0 31 2 *"}`, 422, api.CodeInvalidInput},
		{"cron macro unknown", `{` + good + `,"cron":"@reboot"}`, 422, api.CodeInvalidInput},
		{"cron too long", `{` + good + `,"cron":"` + strings.Repeat("1,", 150) + `1 * * * * *"}`, 422, api.CodeInvalidInput},
		{"interval under a second", `{` + good + `,"every":"500ms"}`, 422, api.CodeInvalidInput},
		{"interval zero", `{` + good + `,"every":"0s"}`, 422, api.CodeInvalidInput},
		{"interval negative", `{` + good + `,"every":"-1m"}`, 422, api.CodeInvalidInput},
		{"interval with a fraction", `{` + good + `,"every":"1.5s"}`, 422, api.CodeInvalidInput},
		{"interval not a duration", `{` + good + `,"every":"hourly"}`, 422, api.CodeInvalidInput},
		{"timezone with every", `{` + good + `,"every":"1m","timezone":"UTC"}`, 422, api.CodeInvalidInput},
		{"unknown timezone", `{` + good + `,"cron":"@daily","timezone":"Mars/Olympus"}`, 422, api.CodeInvalidInput},
		{"timezone Local", `{` + good + `,"cron":"@daily","timezone":"Local"}`, 422, api.CodeInvalidInput},
		{"timezone path", `{` + good + `,"cron":"@daily","timezone":"../../etc/passwd"}`, 422, api.CodeInvalidInput},
		{"maxAttempts over the type's", `{` + good + `,"every":"1m","maxAttempts":99}`, 422, api.CodeInvalidInput},
		{"timeout too short", `{` + good + `,"every":"1m","timeout":"1ms"}`, 422, api.CodeInvalidInput},
		{"id with a dot", `{"id":"a.b",` + good + `,"every":"1m"}`, 422, api.CodeInvalidInput},
		{"id wildcard *", `{"id":"*",` + good + `,"every":"1m"}`, 422, api.CodeInvalidInput},
		{"id wildcard >", `{"id":">",` + good + `,"every":"1m"}`, 422, api.CodeInvalidInput},
		{"id with a space", `{"id":"a b",` + good + `,"every":"1m"}`, 422, api.CodeInvalidInput},
		{"id with a slash", `{"id":"../x",` + good + `,"every":"1m"}`, 422, api.CodeInvalidInput},
		{"id not ASCII", `{"id":"caf\u00e9",` + good + `,"every":"1m"}`, 422, api.CodeInvalidInput},
		{"id starting with -", `{"id":"-x",` + good + `,"every":"1m"}`, 422, api.CodeInvalidInput},
		{"id too long", `{"id":"` + strings.Repeat("a", 65) + `",` + good + `,"every":"1m"}`, 422, api.CodeInvalidInput},
		{"id not a string", `{"id":7,` + good + `,"every":"1m"}`, 422, api.CodeInvalidInput},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, _, body := request(t, "POST", b.url+"/v1/schedules", tok, "application/json", tc.body)
			if status != tc.status || errorCode(body) != tc.code {
				t.Fatalf("%d %s, want %d %s", status, body, tc.status, tc.code)
			}
		})
	}
	if status, _, body := request(t, "POST", b.url+"/v1/schedules", tok, "text/plain", `{`+good+`,"every":"1m"}`); status != 415 {
		t.Errorf("text/plain: %d %s", status, body)
	}
	for _, id := range []string{"a.b", "%2A", "%3E", "a%20b", strings.Repeat("a", 65), "%C3%A9"} {
		for _, method := range []string{"GET", "DELETE"} {
			if status, _, body := request(t, method, b.url+"/v1/schedules/"+id, tok, "", ""); status != 404 || errorCode(body) != api.CodeScheduleNotFound {
				t.Errorf("%s %s: %d %s", method, id, status, body)
			}
		}
	}
	if list, err := api.NewClient(b.url, tok).Schedules(context.Background()); err != nil || len(list.Schedules) != 0 {
		t.Fatalf("refused schedules were stored: %v %+v", err, list)
	}

	// Only operators: a plain user's token, and an operator's stream token, are 403 on every route.
	plain := b.token(t, "alice")
	stream, err := b.signer.Sign("ops", time.Hour, auth.ScopeStream, "", auth.DefaultOperatorRole)
	if err != nil {
		t.Fatal(err)
	}
	for _, tk := range []string{plain, stream} {
		for _, r := range [][2]string{{"GET", "/v1/schedules"}, {"POST", "/v1/schedules"}, {"GET", "/v1/schedules/x"}, {"DELETE", "/v1/schedules/x"}} {
			status, _, body := request(t, r[0], b.url+r[1], tk, "application/json", `{`+good+`,"every":"1m"}`)
			if status != http.StatusForbidden || errorCode(body) != api.CodeForbidden {
				t.Errorf("%s %s as a non-operator: %d %s", r[0], r[1], status, body)
			}
		}
	}
	if status, _, _ := request(t, "GET", b.url+"/v1/schedules", "", "", ""); status != http.StatusUnauthorized {
		t.Errorf("no token: %d", status)
	}
}

// An every-second schedule makes one job per tick, as the operator who made it, named after it, with
// the id derived from the tick, and the jobs run.
func TestScheduleEverySecondMakesAJobPerTick(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	ops := b.operator(t, "ops")
	s, err := ops.CreateSchedule(ctx, api.ScheduleRequest{ID: "each-second", Type: stepsName, Input: json.RawMessage(`{"steps":2}`), Every: "1s"})
	if err != nil {
		t.Fatal(err)
	}
	var ticks []time.Time
	streamstest.WaitFor(t, 15*time.Second, func() error {
		if ticks = testkit.TickTimes(t, testkit.SubmittedEvents(t, b.js, "ops"), s); len(ticks) < 3 {
			return fmt.Errorf("%d jobs", len(ticks))
		}
		return nil
	})
	if gaps := testkit.TickGaps(ticks, time.Second); len(gaps) > 0 {
		t.Errorf("ticks without a job: %v", gaps)
	}
	def := streams.Schedule{ID: s.ID, CreatedAt: s.CreatedAt}
	for _, tick := range ticks[:3] {
		st := waitState(t, ops, def.TickJobID(tick), api.StateCompleted)
		if st.Name != "schedule each-second" || st.Type != stepsName || string(st.Result) != `{"steps":2}` {
			t.Errorf("tick %s made %+v", tick, st)
		}
	}
	// The jobs are the operator's: nobody else sees them.
	if _, err := b.client(t, "alice").Get(ctx, def.TickJobID(ticks[0])); !api.IsCode(err, api.CodeJobNotFound) {
		t.Errorf("another user reads the schedule's job: %v", err)
	}
	if err := ops.DeleteSchedule(ctx, s.ID); err != nil {
		t.Fatal(err)
	}
}
