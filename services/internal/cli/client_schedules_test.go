package cli

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/jobwire/jobwire/api"
	"github.com/jobwire/jobwire/services/internal/auth"
)

// An operator creates, lists and deletes schedules from the CLI; a plain user is refused, and so are
// flags that do not make a schedule.
func TestSchedulesCommands(t *testing.T) {
	s := setup(t, 0, "alice")
	runCLI(t, "", "schedules").wantCode(t, exitAuth)
	ops, err := s.Signer.Sign("ops", time.Hour, "", "", auth.DefaultOperatorRole)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("JOBWIRE_TOKEN", ops)
	r := runCLI(t, "", "schedules", "create", "--id", "nightly", "--type", "noop", "--input", "{}", "--cron", "0 30 2 * * *",
		"--timezone", "Europe/Berlin", "--json").wantCode(t, 0)
	var sc api.Schedule
	if err := json.Unmarshal([]byte(strings.TrimSpace(r.out)), &sc); err != nil || sc.ID != "nightly" || sc.Owner != "ops" {
		t.Fatalf("create: %q %v", r.out, err)
	}
	if r := runCLI(t, `{}`, "schedules", "create", "--type", "noop", "--input", "@-", "--every", "1h").wantCode(t, 0); !strings.Contains(r.out, "noop every 1h") {
		t.Fatalf("create from stdin: %q", r.out)
	}
	table := runCLI(t, "", "schedules", "list").wantCode(t, 0)
	if !strings.Contains(table.out, "nightly") || !strings.Contains(table.out, "0 30 2 * * * (Europe/Berlin)") || strings.Count(table.out, "noop") != 2 {
		t.Fatalf("list:\n%s", table.out)
	}
	for _, args := range [][]string{
		{"schedules", "create", "--type", "noop", "--input", "{}"},
		{"schedules", "create", "--type", "noop", "--input", "{}", "--every", "1h", "--cron", "@daily"},
		{"schedules", "create", "--type", "noop", "--input", "{}", "--every", "10ms"},
		{"schedules", "create", "--id", "nightly", "--type", "noop", "--input", "{}", "--every", "1h"},
		{"schedules", "create", "--every", "1h"},
	} {
		runCLI(t, "", args...).wantCode(t, exitOther)
	}
	if r := runCLI(t, "", "schedules", "delete", "nightly").wantCode(t, 0); !strings.Contains(r.out, "nightly: deleted") {
		t.Fatalf("delete: %q", r.out)
	}
	runCLI(t, "", "schedules", "delete", "nightly").wantCode(t, exitNotFound)
	if r := runCLI(t, "", "schedules", "--json").wantCode(t, 0); strings.Count(strings.TrimSpace(r.out), "\n") != 0 || strings.Contains(r.out, "nightly") {
		t.Fatalf("after the delete: %q", r.out)
	}
}
