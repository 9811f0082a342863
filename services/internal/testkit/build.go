package testkit

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

// BuildExample builds the example module examples/<name> on its own (GOWORK=off: only its go.mod and
// replace lines count, as for a team that copies it) into the test's temp dir and returns the binary.
func BuildExample(t testing.TB, name string) string {
	t.Helper()
	_, self, _, _ := runtime.Caller(0)
	dir := filepath.Join(filepath.Dir(self), "..", "..", "..", "examples", name)
	bin := filepath.Join(t.TempDir(), name)
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build examples/%s with GOWORK=off: %v\n%s", name, err, out)
	}
	return bin
}

// StartCount builds examples/count (BuildExample) and runs it as a worker process serving demo.count on
// the NATS server at natsURL; it is killed when the test ends.
func StartCount(t testing.TB, natsURL string) *Proc {
	t.Helper()
	return StartProc(t, "examples/count", BuildExample(t, "count"), []string{"NATS_URL=" + natsURL})
}
