package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jobwire/jobwire/api"
	"github.com/jobwire/jobwire/services/internal/auth"
	"github.com/jobwire/jobwire/streams"
	"github.com/jobwire/jobwire/streams/streamstest"
)

// An operator lists, retries and purges dead letters from the CLI; a plain user is refused.
func TestDeadLettersCommands(t *testing.T) {
	s := setup(t, 0, "alice")
	runCLI(t, "", "dead-letters").wantCode(t, exitAuth)
	ops, err := s.Signer.Sign("ops", time.Hour, "", "", auth.DefaultOperatorRole)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("JOBWIRE_TOKEN", ops)
	if _, err := s.JS.Publish(context.Background(), streams.QueueSubject(api.JobTypePlaylistImport), []byte("not a job")); err != nil {
		t.Fatal(err)
	}
	var key string
	streamstest.WaitFor(t, 10*time.Second, func() error {
		r := runCLI(t, "", "dead-letters", "--code", "invalid_job_message", "--json")
		var d api.DeadLetter
		if err := json.Unmarshal([]byte(strings.TrimSpace(r.out)), &d); err != nil {
			return fmt.Errorf("%q: %w", r.out, err)
		}
		key = d.Key
		return nil
	})
	table := runCLI(t, "", "dead-letters", "--since", "1h").wantCode(t, 0)
	if !strings.Contains(table.out, key) || !strings.Contains(table.out, "invalid_job_message") {
		t.Fatalf("the table does not show %s:\n%s", key, table.out)
	}
	if r := runCLI(t, "", "dead-letters", "retry", key).wantCode(t, exitOther); !strings.Contains(r.out, "not_retryable") {
		t.Fatalf("retry of a malformed message: %q", r.out)
	}
	runCLI(t, "", "dead-letters", "purge", "--code", "invalid_job_message").wantCode(t, exitOther)
	runCLI(t, "", "dead-letters", "purge", key, "--code", "x").wantCode(t, exitOther)
	if r := runCLI(t, "", "dead-letters", "purge", "--code", "invalid_job_message", "--yes").wantCode(t, 0); !strings.Contains(r.out, key+": purged") {
		t.Fatalf("purge: %q", r.out)
	}
	if r := runCLI(t, "", "dlq", "--json").wantCode(t, 0); strings.TrimSpace(r.out) != "" {
		t.Fatalf("dead letters left after the purge: %q", r.out)
	}
}
