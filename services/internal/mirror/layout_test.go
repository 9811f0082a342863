package mirror

import (
	"encoding/json"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/jobwire/jobwire/api"
	"github.com/jobwire/jobwire/streams"
	"github.com/jobwire/jobwire/streams/streamstest"
)

func TestLayoutOfFinishedJobs(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})

	done := b.newJob("road trip", true)
	b.progress(done, 40, 100)
	b.complete(done, `{"added": 3, "duplicates": 1}`)
	failed := b.newJob("bad list", true)
	b.fail(failed, "line 1: not a playlist")
	cancelled := b.newJob("stopped", true)
	b.cancel(cancelled, "by user")

	b.waitInSet(b.k.completed, done)
	b.waitInSet(b.k.failed, failed)
	b.waitInSet(b.k.failed, cancelled)

	h := b.hash(done)
	want := map[string]string{
		"name": api.JobTypePlaylistImport, "data": `{"name":"road trip"}`, "opts": `{"attempts":1}`,
		"progress": "100", "returnvalue": `{"added":3,"duplicates":1}`, "atm": "1", "ats": "1",
	}
	for f, v := range want {
		if h[f] != v {
			t.Errorf("completed %s = %q, want %q", f, h[f], v)
		}
	}
	for _, f := range []string{"data", "opts", "progress", "returnvalue"} {
		if !json.Valid([]byte(h[f])) {
			t.Errorf("field %s is not valid JSON: %q", f, h[f])
		}
	}
	if _, ok := h["failedReason"]; ok {
		t.Errorf("completed job has failedReason %q", h["failedReason"])
	}
	score, err := b.rdb.ZScore(b.ctx(), b.k.completed, done).Result()
	if err != nil || strconv.FormatInt(int64(score), 10) != h["finishedOn"] {
		t.Errorf("completed score %v (err %v), finishedOn %q: want equal", score, err, h["finishedOn"])
	}
	ts, _ := strconv.ParseInt(h["timestamp"], 10, 64)
	po, _ := strconv.ParseInt(h["processedOn"], 10, 64)
	fo, _ := strconv.ParseInt(h["finishedOn"], 10, 64)
	if ts == 0 || po < ts || fo < po {
		t.Errorf("timestamps out of order: timestamp %d processedOn %d finishedOn %d", ts, po, fo)
	}

	if got := b.hash(failed)["failedReason"]; got != "line 1: not a playlist" {
		t.Errorf("failed failedReason = %q", got)
	}
	if got := b.hash(cancelled)["failedReason"]; got != "cancelled: by user" {
		t.Errorf("cancelled failedReason = %q", got)
	}
	if n, _ := b.rdb.ZCard(b.ctx(), b.k.completed).Result(); n != 1 {
		t.Errorf("completed holds %d jobs, want 1", n)
	}

	// The events stream has BullMQ's entries.
	entries, err := b.rdb.XRange(b.ctx(), b.k.events, "-", "+").Result()
	if err != nil {
		t.Fatalf("XRANGE: %v", err)
	}
	seen := map[string]map[string]any{}
	for _, e := range entries {
		seen[e.Values["event"].(string)+" "+e.Values["jobId"].(string)] = e.Values
	}
	if v := seen["completed "+done]; v == nil || v["returnvalue"] != `{"added":3,"duplicates":1}` {
		t.Errorf("completed event = %v", v)
	}
	if v := seen["failed "+cancelled]; v == nil || v["failedReason"] != "cancelled: by user" {
		t.Errorf("cancelled event = %v", v)
	}
	b.checkKeys()
}

func TestActiveAndQueuedJobsHaveHashButNoList(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})

	queued := b.newJob("later", false)
	active := b.newJob("now", true)
	b.progress(active, 42, 100)
	b.waitField(active, "progress", "42")
	b.waitField(queued, "data", `{"name":"later"}`)

	entries, err := b.rdb.XRange(b.ctx(), b.k.events, "-", "+").Result()
	if err != nil || len(entries) != 1 || entries[0].Values["event"] != "progress" ||
		entries[0].Values["jobId"] != active || entries[0].Values["data"] != "42" {
		t.Errorf("events = %v (err %v), want one progress 42 of the active job", entries, err)
	}
	h := b.hash(active)
	if h["atm"] != "0" || h["ats"] != "1" || h["processedOn"] == "" || h["finishedOn"] != "" {
		t.Errorf("active hash = %v", h)
	}
	if q := b.hash(queued); q["processedOn"] != "" || q["progress"] != "0" {
		t.Errorf("queued hash = %v", q)
	}
	ttl, err := b.rdb.PTTL(b.ctx(), b.k.prefix+active).Result()
	if err != nil || ttl <= 0 {
		t.Errorf("active hash TTL = %v (err %v), want a backstop expiry", ttl, err)
	}
	b.checkKeys()
	if n, _ := b.rdb.Exists(b.ctx(), b.k.completed, b.k.failed).Result(); n != 0 {
		t.Errorf("%d finished sets exist with no finished job", n)
	}
}

func TestRequeuedJobStartsAfresh(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})

	id := b.newJob("again", true)
	b.fail(id, "boom")
	b.waitInSet(b.k.failed, id)

	b.publish(streams.Event{Type: streams.EventRequeued, JobID: id})
	streamstest.WaitFor(t, 10*time.Second, func() error {
		if h := b.hash(id); h["finishedOn"] != "" || h["failedReason"] != "" {
			return fmt.Errorf("hash still finished: %v", h)
		}
		return nil
	})
	if ids := b.members(b.k.failed); len(ids) != 0 {
		t.Errorf("failed still holds %v after requeue", ids)
	}
	b.publish(streams.Event{Type: streams.EventStarted, JobID: id, Attempt: 1})
	b.complete(id, `{"added":2}`)
	b.waitInSet(b.k.completed, id)
	if h := b.hash(id); h["failedReason"] != "" || h["data"] != `{"name":"again"}` {
		t.Errorf("hash after second run = %v", h)
	}
}

func TestLateAndDuplicateEventsDoNotRewindAJob(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	id := b.finishedJob("done")
	b.waitInSet(b.k.completed, id)
	before := b.hash(id)

	// A late progress after the end is ignored; a later job proves the mirror got past it.
	b.progress(id, 10, 100)
	other := b.finishedJob("next")
	b.waitInSet(b.k.completed, other)
	if after := b.hash(id); after["progress"] != before["progress"] || after[seqField] != before[seqField] {
		t.Errorf("late progress changed the finished job: %v -> %v", before, after)
	}

	// A write with an older sequence than the hash's is skipped by the script itself.
	e := &entry{state: api.JobState{ID: id, Type: api.JobTypePlaylistImport, State: api.StateActive, EventSeq: 1}}
	w, err := buildWrite(e, b.k, b.cfg.MaxAge, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	res, errs := b.m.exec(b.ctx(), []write{w})
	if errs[0] != nil || res[0] != 0 {
		t.Errorf("stale write: result %d err %v, want skipped", res[0], errs[0])
	}
	if h := b.hash(id); h["progress"] != before["progress"] {
		t.Errorf("stale write changed progress to %q", h["progress"])
	}
}
