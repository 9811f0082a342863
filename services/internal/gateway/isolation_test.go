package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jobwire/jobwire/api"
	"github.com/jobwire/jobwire/services/internal/gateway"
	"github.com/jobwire/jobwire/services/internal/importer"
	"github.com/jobwire/jobwire/streams"
)

// isolationUsers differ only in characters OwnerToken escapes: "alice.x" becomes "alice_2Ex", and the
// user literally named "alice_2Ex" becomes "alice_5F2Ex". None may see another's jobs or tracks.
var isolationUsers = []string{"alice", "alice.x", "alice_2E", "alice_2Ex", "alice@example.com", "alice_40example.com"}

func TestOwnerTokensOfLookalikeUsersDiffer(t *testing.T) {
	seen := map[string]string{}
	for _, u := range isolationUsers {
		tok, err := streams.OwnerToken(u)
		if err != nil || !streams.ValidOwnerToken(tok) || strings.ContainsAny(tok, ".*> ") {
			t.Fatalf("%q: %q %v", u, tok, err)
		}
		if other, dup := seen[tok]; dup {
			t.Fatalf("%q and %q share the owner token %q", u, other, tok)
		}
		seen[tok] = u
	}
	if a, _ := streams.OwnerToken("alice.x"); a != "alice_2Ex" {
		t.Fatalf("alice.x -> %q", a)
	}
	if b, _ := streams.OwnerToken("alice_2Ex"); b == "alice_2Ex" {
		t.Fatal("the user alice_2Ex got alice.x's token")
	}
}

func TestIsolationAcrossEveryRoute(t *testing.T) {
	b := setup(t, withGateway(func(c *gateway.Config) { c.SubmitRate = gateway.Rate{N: -1} }))
	ctx := context.Background()
	kv, err := b.js.KeyValue(ctx, streams.BucketLibrary)
	if err != nil {
		t.Fatal(err)
	}
	lib := importer.NewLibrary(kv)

	type user struct {
		sub, owner, token string
		jobs              []string // an active job, then a failed (dead-lettered) one
		tracks            []string
	}
	users := make([]*user, len(isolationUsers))
	for i, sub := range isolationUsers {
		owner, _ := streams.OwnerToken(sub)
		u := &user{sub: sub, owner: owner, token: b.token(t, sub)}
		c := api.NewClient(b.url, u.token)
		active := b.submitSteps(t, c, stepsInput{Steps: 1, Block: true})
		failed, _, err := c.Submit(ctx, api.SubmitRequest{Type: stepsName, Input: json.RawMessage(`{"steps":0,"fail":"boom"}`)}, "")
		if err != nil {
			t.Fatal(err)
		}
		u.jobs = []string{active.ID, failed.ID}
		for j := 0; j < 3; j++ {
			if _, err := lib.Add(ctx, owner, active.ID, api.Track{Artist: "Artist " + sub, Title: fmt.Sprintf("Song %d", j)}); err != nil {
				t.Fatal(err)
			}
		}
		users[i] = u
	}
	for _, u := range users {
		c := api.NewClient(b.url, u.token)
		waitState(t, c, u.jobs[0], api.StateActive)
		waitState(t, c, u.jobs[1], api.StateFailed)
		page, err := c.Library(ctx, "", 0)
		if err != nil || len(page.Tracks) != 3 {
			t.Fatalf("%s library: %v %+v", u.sub, err, page)
		}
		for _, tr := range page.Tracks {
			u.tracks = append(u.tracks, tr.Key)
			if !strings.HasPrefix(tr.Key, u.owner+".") || !strings.Contains(tr.Artist, u.sub) {
				t.Fatalf("%s sees track %+v", u.sub, tr)
			}
		}
	}

	// The answer for another user's job is the answer for a job that never existed.
	never := streams.NewJobID(time.Now())
	routes := []struct{ method, path, body string }{
		{"GET", "/v1/jobs/%s", ""},
		{"POST", "/v1/jobs/%s/cancel", ""},
		{"POST", "/v1/jobs/%s/retry", ""},
		{"GET", "/v1/jobs/%s/history", ""},
		{"GET", "/v1/jobs/%s/events", ""},
		{"GET", "/v1/jobs/%s/events?lastEventId=1", ""},
		{"GET", "/library/sync/%s", ""},
		{"GET", "/library/sync/%s/progress", ""},
	}
	want := map[string]string{}
	for _, r := range routes {
		status, _, body := request(t, r.method, b.url+fmt.Sprintf(r.path, never), users[0].token, "", "")
		if status != 404 || errorCode(body) != api.CodeJobNotFound {
			t.Fatalf("%s %s of a job that never existed: %d %s", r.method, r.path, status, body)
		}
		want[r.method+r.path] = string(body)
	}
	for _, u := range users {
		for _, v := range users {
			if u == v {
				continue
			}
			for _, job := range v.jobs {
				for _, r := range routes {
					status, _, body := request(t, r.method, b.url+fmt.Sprintf(r.path, job), u.token, "", "")
					if status != 404 || string(body) != want[r.method+r.path] {
						t.Errorf("%s: %s %s of %s's job: %d %s", u.sub, r.method, r.path, v.sub, status, body)
					}
				}
				// A stream token restricted to the other user's job opens nothing either.
				status, _, body := request(t, "POST", b.url+"/v1/stream-tokens", u.token, "application/json", `{"jobId":"`+job+`"}`)
				if status != 201 {
					t.Fatalf("stream token: %d %s", status, body)
				}
				var st struct{ Token string }
				json.Unmarshal(body, &st)
				if status, _, body := request(t, "GET", b.url+"/v1/jobs/"+job+"/events?access_token="+st.Token, "", "", ""); status != 404 {
					t.Errorf("%s: job-restricted stream token on %s's job: %d %s", u.sub, v.sub, status, body)
				}
			}
			// Another owner's library key is not a cursor.
			for _, key := range v.tracks {
				status, _, body := request(t, "GET", b.url+"/v1/library?cursor="+url.QueryEscape(key), u.token, "", "")
				if status != 400 || errorCode(body) != api.CodeBadRequest || strings.Contains(string(body), "tracks") {
					t.Errorf("%s: cursor %s of %s: %d %s", u.sub, key, v.sub, status, body)
				}
			}
			// Another owner's job id as a list cursor pages the caller's own jobs only.
			status, _, body := request(t, "GET", b.url+"/v1/jobs?cursor="+v.jobs[0], u.token, "", "")
			var list api.JobList
			if status != 200 || json.Unmarshal(body, &list) != nil {
				t.Fatalf("list with a foreign cursor: %d %s", status, body)
			}
			for _, j := range list.Jobs {
				if !slices.Contains(u.jobs, j.ID) {
					t.Errorf("%s: list with %s's cursor shows job %s", u.sub, v.sub, j.ID)
				}
			}
		}
		// The caller's own lists hold exactly their own.
		c := api.NewClient(b.url, u.token)
		list, err := c.List(ctx, "", "", 0)
		if err != nil || len(list.Jobs) != 2 || !slices.Contains(u.jobs, list.Jobs[0].ID) || !slices.Contains(u.jobs, list.Jobs[1].ID) {
			t.Errorf("%s list: %v %+v", u.sub, err, list)
		}
		// Own cursors work, and a cursor that merely starts with the owner token does not.
		page, err := c.Library(ctx, u.tracks[0], 0)
		if err != nil || len(page.Tracks) != 2 {
			t.Errorf("%s library page 2: %v %+v", u.sub, err, page)
		}
		for _, bad := range []string{u.owner + ".>", u.owner + ".*", u.owner + "." + strings.Repeat("g", 32), u.owner + "x." + strings.Repeat("0", 32), u.tracks[0] + "0"} {
			if status, _, body := request(t, "GET", b.url+"/v1/library?cursor="+url.QueryEscape(bad), u.token, "", ""); status != 400 {
				t.Errorf("%s: cursor %q: %d %s", u.sub, bad, status, body)
			}
		}
		// The multiplexed stream, fresh and resumed, carries only the caller's jobs.
		for _, last := range []string{"", "1"} {
			s, err := c.OpenStream(ctx, "/v1/events", last)
			if err != nil {
				t.Fatal(err)
			}
			seen := map[string]bool{}
			collect(t, s, func(ev api.Event) bool {
				if ev.Event != api.EventState {
					return false
				}
				st, _ := ev.State()
				if !slices.Contains(u.jobs, st.ID) {
					t.Errorf("%s: /v1/events (last %q) carries job %s", u.sub, last, st.ID)
				}
				seen[st.ID] = true
				return len(seen) == 2
			})
			s.Close()
		}
	}
	// Nobody could cancel or retry anybody else's jobs.
	for _, u := range users {
		c := api.NewClient(b.url, u.token)
		if st, err := c.Get(ctx, u.jobs[0]); err != nil || st.State != api.StateActive {
			t.Errorf("%s active job: %v %s", u.sub, err, st.State)
		}
		if st, err := c.Get(ctx, u.jobs[1]); err != nil || st.State != api.StateFailed {
			t.Errorf("%s failed job: %v %s", u.sub, err, st.State)
		}
	}
	// The owner may retry their own dead-lettered job.
	if _, err := api.NewClient(b.url, users[1].token).Retry(ctx, users[1].jobs[1]); err != nil {
		t.Errorf("owner retry: %v", err)
	}
}
