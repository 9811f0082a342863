package cli

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
)

// closedURL returns the URL of a loopback port nothing listens on.
func closedURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return "http://" + addr
}

func TestUnreachableGatewayExits2(t *testing.T) {
	url := closedURL(t)
	t.Setenv("JOBWIRE_URL", url)
	t.Setenv("JOBWIRE_TOKEN", "whatever")
	id := ulid.Make().String()
	path := writeFile(t, "a.m3u", m3u(2, 0, 0))
	for _, args := range [][]string{
		{"jobs"}, {"watch", id}, {"submit", path}, {"submit", path, "--watch"}, {"cancel", id},
		{"history", id}, {"library"}, {"jobs", "retry", id}, {"jobs", "--url", url + "/"},
	} {
		start := time.Now()
		r := runCLI(t, "", args...).wantCode(t, 2)
		want := "cannot reach the jobwire gateway at " + url + ": is `jobwire dev` running?"
		if !strings.Contains(r.err.Error(), want) {
			t.Fatalf("%v: %q does not say %q", args, r.err, want)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("%v took %s to give up on a closed port", args, d)
		}
	}
}

func TestBadTokenExits3(t *testing.T) {
	s := setup(t, 0, "alice")
	id := ulid.Make().String()
	for _, token := range []string{"not-a-token", s.Token(t, "alice") + "x"} {
		for _, args := range [][]string{{"jobs"}, {"watch", id}, {"library"}, {"submit", writeFile(t, "a.m3u", m3u(1, 0, 0))}} {
			r := runCLI(t, "", append(args, "--token", token)...).wantCode(t, 3)
			if !strings.Contains(r.err.Error(), "token missing, invalid or expired: run `jobwire token --user you` or set JOBWIRE_TOKEN") {
				t.Fatalf("%v: unhelpful message %q", args, r.err)
			}
		}
	}
	t.Setenv("JOBWIRE_TOKEN", "")
	runCLI(t, "", "jobs").wantCode(t, 3)
}

func TestUnknownJobExits4(t *testing.T) {
	setup(t, 0, "alice")
	for _, id := range []string{ulid.Make().String(), "not-an-id"} {
		for _, args := range [][]string{{"watch", id}, {"cancel", id}, {"history", id}, {"watch", id, "--json"}} {
			r := runCLI(t, "", args...).wantCode(t, 4)
			if !strings.Contains(r.err.Error(), "no such job") || !strings.Contains(r.err.Error(), id) {
				t.Fatalf("%v: %q should name the job and say it does not exist", args, r.err)
			}
		}
	}
}

func TestAnotherUsersJobIsNotFound(t *testing.T) {
	s := setup(t, 0, "alice")
	id := strings.TrimSpace(runCLI(t, "", "submit", writeFile(t, "a.m3u", m3u(2, 0, 0))).wantCode(t, 0).out)
	runCLI(t, "", "watch", id, "--token", s.Token(t, "bob")).wantCode(t, 4)
}

func TestUsageErrorsExit1(t *testing.T) {
	for _, args := range [][]string{
		{"watch"}, {"jobs", "--limit", "0"}, {"jobs", "--state", "sleeping"}, {"library", "--limit", "501"},
		{"jobs", "--url", "localhost:8080"}, {"cancel", "a", "b"},
	} {
		runCLI(t, "", args...).wantCode(t, 1)
	}
}

func TestHelpDocumentsExitCodes(t *testing.T) {
	for _, cmd := range []string{"submit", "watch", "jobs", "cancel", "history", "library"} {
		r := runCLI(t, "", cmd, "--help").wantCode(t, 0)
		for _, want := range []string{"Exit codes:", "2  the gateway cannot be reached", "5  the watched job ended failed or cancelled", "--url", "--token", "--json"} {
			if !strings.Contains(r.out, want) {
				t.Fatalf("%s --help lacks %q:\n%s", cmd, want, r.out)
			}
		}
	}
}
