package streams_test

import (
	"strings"
	"testing"
	"time"

	"github.com/jobwire/jobwire/streams"
)

func TestValidJobID(t *testing.T) {
	good := streams.NewJobID(time.Now())
	if !streams.ValidJobID(good) {
		t.Fatalf("fresh id %q rejected", good)
	}
	if got := streams.JobIDTime(good); time.Since(got) > time.Minute {
		t.Fatalf("id time %v, want about now", got)
	}
	for _, id := range []string{
		"", "*", ">", "a.b", "a b", "01JF", strings.Repeat("A", 27), strings.ToLower(good),
		"01JFZZZZZZZZZZZZZZZZZZZZZ.", "01JFZZZZZZZZZZZZZZZZZZZZ>*", "ÄÖÜ", "01JFZZZZZZZZZZZZZZZZZZZZI0",
		"81JFZZZZZZZZZZZZZZZZZZZZZZ", "../../etc/passwd", "01JFZZZZZZZZZZZZZZZZZZZ\nZ",
	} {
		if streams.ValidJobID(id) {
			t.Errorf("ValidJobID(%q) = true", id)
		}
	}
}

func TestOwnerTokenIsSubjectSafeAndInjective(t *testing.T) {
	subs := []string{
		"alice", "Alice", "bob@example.com", "bob_40example.com", "bob_example.com", "a.b", "a b", "a*b", "a>b",
		"用户", "-", "_", "_5F", "x\x00y", "auth0|5f7c8ec7c33c6c004bbafe82", strings.Repeat("z", streams.MaxSubjectLen),
	}
	seen := map[string]string{}
	for _, sub := range subs {
		tok, err := streams.OwnerToken(sub)
		if err != nil {
			t.Fatalf("OwnerToken(%q): %v", sub, err)
		}
		if strings.ContainsAny(tok, ".*> \t\r\n") {
			t.Errorf("OwnerToken(%q) = %q: not subject-safe", sub, tok)
		}
		if !streams.ValidOwnerToken(tok) {
			t.Errorf("ValidOwnerToken(%q) = false for the token of %q", tok, sub)
		}
		if prev, dup := seen[tok]; dup {
			t.Errorf("%q and %q share token %q", prev, sub, tok)
		}
		seen[tok] = sub
	}
	if tok, _ := streams.OwnerToken("alice"); tok != "alice" {
		t.Errorf("plain id changed: %q", tok)
	}
	for _, bad := range []string{"", strings.Repeat("z", streams.MaxSubjectLen+1)} {
		if _, err := streams.OwnerToken(bad); err == nil {
			t.Errorf("OwnerToken(len %d) accepted", len(bad))
		}
	}
	for _, bad := range []string{"", "a.b", "a*", "_", "_5", "_zz", "a_5f"} {
		if streams.ValidOwnerToken(bad) {
			t.Errorf("ValidOwnerToken(%q) = true", bad)
		}
	}
}

func FuzzOwnerToken(f *testing.F) {
	for _, s := range []string{"alice", "bob@example.com", "a.b", "_5F", "用户"} {
		f.Add(s, s+"x")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		ta, errA := streams.OwnerToken(a)
		tb, errB := streams.OwnerToken(b)
		if errA != nil || errB != nil {
			return
		}
		if !streams.ValidOwnerToken(ta) || strings.ContainsAny(ta, ".*> ") {
			t.Fatalf("token %q of %q is not subject-safe", ta, a)
		}
		if a != b && ta == tb {
			t.Fatalf("%q and %q collide on %q", a, b, ta)
		}
	})
}

func TestSubjectsAndKeys(t *testing.T) {
	id := streams.NewJobID(time.Now())
	owner, jobID, ok := streams.ParseEventSubject(streams.EventSubject("alice", id))
	if !ok || owner != "alice" || jobID != id {
		t.Fatalf("ParseEventSubject round trip: %q %q %v", owner, jobID, ok)
	}
	owner, jobID, ok = streams.ParseStateKey(streams.StateKey("bob_40x", id))
	if !ok || owner != "bob_40x" || jobID != id {
		t.Fatalf("ParseStateKey round trip: %q %q %v", owner, jobID, ok)
	}
	if _, _, ok := streams.ParseStateKey("alice.*"); ok {
		t.Fatal("ParseStateKey accepted a wildcard")
	}
	gw := streams.NewGatewayID(time.Now())
	if got, ok := streams.ParseGatewayStatsSubject(streams.GatewayStatsSubject(gw)); !ok || got != gw {
		t.Fatalf("ParseGatewayStatsSubject round trip: %q %v", got, ok)
	}
	for _, bad := range []string{"jobs.gateways.*", "jobs.gateways.x.y", "jobs.events." + gw, "jobs.gateways."} {
		if _, ok := streams.ParseGatewayStatsSubject(bad); ok {
			t.Errorf("ParseGatewayStatsSubject accepted %q", bad)
		}
	}
	if got := streams.WorkerConsumer("playlist.import"); got != "worker-playlist_import" {
		t.Fatalf("WorkerConsumer = %q", got)
	}
	if a, b := streams.TrackKey("alice", "x\x1fy"), streams.TrackKey("alice", "x\x1fy"); a != b || !strings.HasPrefix(a, "alice.") {
		t.Fatalf("TrackKey not stable: %q %q", a, b)
	}
	for _, typ := range []string{"playlist.import", "noop", "a.b.c"} {
		if !streams.ValidJobType(typ) {
			t.Errorf("ValidJobType(%q) = false", typ)
		}
	}
	for _, typ := range []string{"", "*", ">", "a..b", ".a", "A", "a b", "playlist.import.", "x.*"} {
		if streams.ValidJobType(typ) {
			t.Errorf("ValidJobType(%q) = true", typ)
		}
	}
}
